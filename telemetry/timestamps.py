"""Timestamps as operators read them."""

from datetime import UTC, datetime


def iso_utc(timestamp: float | None) -> str | None:
    """`time.time()` as ISO 8601 UTC to the second with a `Z`, or None."""
    if timestamp is None:
        return None
    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )
