"""The OpenTelemetry settings this package interprets itself, read from a mapping.

The SDK reads the rest (OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES, ...) from the
process environment as the specification says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

TRUE = frozenset({"true", "1", "yes", "on"})
INSTRUMENTATIONS = ("lean", "contrib")


@dataclass(frozen=True)
class TelemetryConfig:
    disabled: bool
    traces_endpoint: str | None
    metrics_token: str | None
    multiprocess_dir: str | None
    instrumentation: str = "lean"

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> TelemetryConfig:
        """Read OTEL_SDK_DISABLED, the OTLP traces endpoint (per the spec), METRICS_TOKEN and
        TELEMETRY_INSTRUMENTATION."""
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or None
        if endpoint is None and env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
        return cls(
            disabled=env.get("OTEL_SDK_DISABLED", "").strip().lower() in TRUE,
            traces_endpoint=endpoint,
            metrics_token=env.get("METRICS_TOKEN") or None,
            multiprocess_dir=env.get("METRICS_MULTIPROCESS_DIR") or None,
            instrumentation=_instrumentation(env.get("TELEMETRY_INSTRUMENTATION", "")),
        )


def _instrumentation(value: str) -> str:
    """`lean` (ours, the default) or `contrib` (the OpenTelemetry contrib instrumentations)."""
    choice = value.strip().lower() or "lean"
    if choice not in INSTRUMENTATIONS:
        raise ValueError(
            f"TELEMETRY_INSTRUMENTATION must be one of {', '.join(INSTRUMENTATIONS)}, not {value!r}"
        )
    return choice
