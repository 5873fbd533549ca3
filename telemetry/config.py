"""The OpenTelemetry settings this package interprets itself, read from a mapping.

The SDK reads the rest (OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES, ...) from the
process environment as the specification says. A value we cannot use is logged and ignored, never
raised: a telemetry typo must not keep the app from starting.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry.util.re import parse_env_headers

TRUE = frozenset({"true", "1", "yes", "on"})
FALSE = frozenset({"false", "0", "no", "off"})
INSTRUMENTATIONS = ("lean", "contrib")
TRACE_EXPORTERS = ("otlp", "console", "none")
COMPRESSIONS = ("none", "gzip", "deflate")
DEFAULT_EXPORT_TIMEOUT_MS = 10_000
# The specification reads a timeout of 0 as "no limit"; an hour stands in for it.
UNLIMITED_EXPORT_TIMEOUT_MS = 3_600_000

_logger = logging.getLogger("telemetry")


@dataclass(frozen=True)
class TraceExportConfig:
    """Where and how spans are exported (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_*)."""

    exporters: tuple[str, ...] = ("otlp",)  # of "otlp", "console"; () for "none"
    endpoint: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    compression: str = "none"
    timeout_s: float = DEFAULT_EXPORT_TIMEOUT_MS / 1000  # one batch, every attempt and retry
    certificate: str | None = None
    client_key: str | None = None
    client_certificate: str | None = None

    @property
    def active(self) -> tuple[str, ...]:
        """The exporters that will receive spans: `otlp` only when an endpoint is set."""
        return tuple(e for e in self.exporters if e != "otlp" or self.endpoint)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> TraceExportConfig:
        """Read the trace exporter settings; a signal-specific variable beats the general one."""

        def otlp(name: str) -> str | None:
            value = env.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or env.get(
                f"OTEL_EXPORTER_OTLP_{name}"
            )
            return value.strip() if value and value.strip() else None

        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip() or None
        if endpoint is None and env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
            endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"].strip().rstrip("/") + "/v1/traces"
        protocol = otlp("PROTOCOL")
        if protocol and protocol != "http/protobuf":
            _logger.warning("OTLP protocol %r is not supported; using http/protobuf", protocol)
        return cls(
            exporters=_trace_exporters(env.get("OTEL_TRACES_EXPORTER", "")),
            endpoint=endpoint,
            headers=tuple(parse_env_headers(otlp("HEADERS") or "", liberal=True).items()),
            compression=_compression(otlp("COMPRESSION")),
            timeout_s=_timeout_ms(otlp("TIMEOUT")) / 1000,
            certificate=otlp("CERTIFICATE"),
            client_key=otlp("CLIENT_KEY"),
            client_certificate=otlp("CLIENT_CERTIFICATE"),
        )


def _trace_exporters(value: str) -> tuple[str, ...]:
    """OTEL_TRACES_EXPORTER: a comma-separated list; unknown names are logged and ignored."""
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in TRACE_EXPORTERS]
    if unknown:
        _logger.warning(
            "OTEL_TRACES_EXPORTER: ignoring unknown exporter(s) %s (known: %s)",
            ", ".join(unknown),
            ", ".join(TRACE_EXPORTERS),
        )
    known = [name for name in names if name in TRACE_EXPORTERS]
    if not known:
        return ("otlp",)  # unset, or nothing usable: the specification's default
    return tuple(dict.fromkeys(name for name in known if name != "none"))


def _compression(value: str | None) -> str:
    if value is None:
        return "none"
    if value.lower() not in COMPRESSIONS:
        _logger.warning("OTLP compression %r is not supported; sending uncompressed", value)
        return "none"
    return value.lower()


def _timeout_ms(value: str | None) -> float:
    """A timeout in milliseconds, as the specification says (0: no limit)."""
    if value is None:
        return DEFAULT_EXPORT_TIMEOUT_MS
    try:
        timeout = int(value)
    except ValueError:
        timeout = -1
    if timeout < 0:
        _logger.warning(
            "OTLP timeout %r is not a number of milliseconds; using %d",
            value,
            DEFAULT_EXPORT_TIMEOUT_MS,
        )
        return DEFAULT_EXPORT_TIMEOUT_MS
    return timeout or UNLIMITED_EXPORT_TIMEOUT_MS


@dataclass(frozen=True)
class TelemetryConfig:
    disabled: bool
    traces: TraceExportConfig
    metrics_token: str | None
    multiprocess_dir: str | None
    instrumentation: str = "lean"
    access_log: bool = True

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> TelemetryConfig:
        """Read OTEL_SDK_DISABLED, the trace exporter settings, METRICS_TOKEN,
        TELEMETRY_INSTRUMENTATION and ACCESS_LOG."""
        return cls(
            disabled=env.get("OTEL_SDK_DISABLED", "").strip().lower() in TRUE,
            traces=TraceExportConfig.from_mapping(env),
            metrics_token=env.get("METRICS_TOKEN") or None,
            multiprocess_dir=env.get("METRICS_MULTIPROCESS_DIR") or None,
            instrumentation=_instrumentation(env.get("TELEMETRY_INSTRUMENTATION", "")),
            access_log=_flag(env, "ACCESS_LOG", default=True),
        )

    @property
    def traces_endpoint(self) -> str | None:
        """The OTLP traces endpoint (None: not set)."""
        return self.traces.endpoint


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A true/false setting; anything else is logged and read as `default`."""
    value = env.get(name, "").strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    if value:
        _logger.warning("%s=%r is neither true nor false; using %s", name, value, default)
    return default


def _instrumentation(value: str) -> str:
    """`lean` (ours, the default) or `contrib` (the OpenTelemetry contrib instrumentations)."""
    choice = value.strip().lower() or "lean"
    if choice not in INSTRUMENTATIONS:
        raise ValueError(
            f"TELEMETRY_INSTRUMENTATION must be one of {', '.join(INSTRUMENTATIONS)}, not {value!r}"
        )
    return choice
