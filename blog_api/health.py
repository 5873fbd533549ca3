"""Health endpoints for load balancers and operators."""

from __future__ import annotations

from apiflask import APIBlueprint

bp = APIBlueprint("health", __name__, tag="Health")


@bp.get("/health/live")
def live() -> dict:
    """200 while the process can serve; checks nothing else."""
    return {"status": "healthy"}
