"""Two shortcuts into the OpenTelemetry SDK's hot paths, each taken only where it is exact.

The SDK validates every attribute of every span and every measurement, with an `isinstance`
chain per value, and hashes a measurement's attributes (sorted, recursively) to find its
histogram bucket set. Our instrumentation builds its attributes itself, from strings and ints,
and records into a handful of attribute sets over and over, so that work buys nothing; measured
under callgrind it was a third of a span's cost and two thirds of a histogram record's.

- `FastSpans` writes attributes straight into a span that was started without them. Only
  when the sampler cannot see the difference (the SDK's own samplers decide on the trace id and
  the parent, never on attributes) and no span limit could drop or cut a value.
- `FastHistogram` remembers, per attribute set, the SDK's own aggregation objects (made by the
  first, public, `record`) and hands later measurements straight to them, with the exemplar
  filter's verdict, exactly as the SDK's consumer does. Only when no view filters attributes.

Both read private SDK structures (pinned: opentelemetry-sdk 1.45). If the structures are not
there, they say so once in the log and use the public API instead, so an SDK upgrade costs speed,
never correctness.
"""

from __future__ import annotations

import logging
from time import time_ns

from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import (
    ParentBased,
    StaticSampler,
    TraceIdRatioBased,
)

log = logging.getLogger(__name__)

_MAX_ATTRIBUTES = 32  # the most any span of ours carries, with room to spare
_CACHE_LIMIT = 1024


def _ignores_attributes(sampler) -> bool:
    """True for the SDK's built-in samplers (their decision never reads attributes)."""
    if isinstance(sampler, ParentBased):
        delegates = [
            getattr(sampler, name, None)
            for name in (
                "_root",
                "_remote_parent_sampled",
                "_remote_parent_not_sampled",
                "_local_parent_sampled",
                "_local_parent_not_sampled",
            )
        ]
        return all(d is not None and _ignores_attributes(d) for d in delegates)
    return type(sampler) in (StaticSampler, TraceIdRatioBased)


class FastSpans:
    """Put attributes on spans of one tracer provider, directly when that is exact."""

    def __init__(self, tracer_provider: TracerProvider) -> None:
        limits = getattr(tracer_provider, "_span_limits", None)
        self.direct = (
            _ignores_attributes(tracer_provider.sampler)
            and limits is not None
            and limits.max_span_attribute_length is None
            and (
                limits.max_span_attributes is None or limits.max_span_attributes >= _MAX_ATTRIBUTES
            )
        )

    def start(self, tracer, name: str, *, context, kind, attributes, start_time=None):
        """`tracer.start_span(...)` with `attributes` (valid str/int values, at most 32).

        `attributes` may be a callable that makes them: directly, it is called only for a span
        that records (an unsampled request pays nothing for them).
        """
        if not self.direct:
            if callable(attributes):
                attributes = attributes()
            return tracer.start_span(
                name, context=context, kind=kind, attributes=attributes, start_time=start_time
            )
        span = tracer.start_span(name, context=context, kind=kind, start_time=start_time)
        if span.is_recording():
            self.update(span, attributes() if callable(attributes) else attributes)
        return span

    def update(self, span, attributes: dict) -> None:
        """Add valid attributes to a recording span that has not ended."""
        if self.direct:
            store = getattr(span._attributes, "_dict", None)
            if store is not None:
                store.update(attributes)
                return
            log.warning("the SDK's span attributes changed shape; setting attributes the slow way")
            self.direct = False
        span.set_attributes(attributes)


class _Measurement:
    """What an aggregation reads of the SDK's Measurement, without its validation on creation."""

    __slots__ = ("value", "time_unix_nano", "attributes", "context")

    def __init__(self, value, time_unix_nano, attributes, context) -> None:
        self.value = value
        self.time_unix_nano = time_unix_nano
        self.attributes = attributes
        self.context = context


class FastHistogram:
    """`histogram.record(value, attributes, context=...)`, keyed by a hashable `key` that stands
    for `attributes`; straight into the SDK's aggregations once a key has been seen."""

    def __init__(self, histogram) -> None:
        self._histogram = histogram
        self._handles: dict = {}  # key -> (attributes, [aggregation per reader])
        self._consumer = getattr(histogram, "_measurement_consumer", None)
        config = getattr(self._consumer, "_sdk_config", None)
        self._filter = getattr(config, "exemplar_filter", None)
        self.enabled = self._filter is not None

    def record(self, value: float, key, attributes: dict, context) -> None:
        found = self._handles.get(key) if self.enabled else None
        if found is None:
            self._histogram.record(value, attributes, context=context)
            if self.enabled and len(self._handles) < _CACHE_LIMIT:
                aggregations = self._aggregations(attributes)
                if aggregations is not None:
                    self._handles[key] = (attributes, aggregations)
            return
        attributes, aggregations = found
        measurement = _Measurement(value, time_ns(), attributes, context)
        sample = self._filter.should_sample(value, measurement.time_unix_nano, attributes, context)
        for aggregation in aggregations:
            aggregation.aggregate(measurement, sample)

    def _aggregations(self, attributes: dict) -> list | None:
        """The SDK's aggregation of `attributes` in every reader, or None if not reachable."""
        try:
            key = _hash_attributes(dict(attributes))
            found = []
            for storage in self._consumer._reader_storages.values():
                for match in storage._get_or_init_view_instrument_match(self._histogram):
                    if match._view._attribute_keys is not None:
                        return None  # a view that drops attributes: leave it to the SDK
                    found.append(match._attributes_aggregation[key])
            return found
        except (AttributeError, KeyError, TypeError):
            log.warning("the SDK's metric internals changed shape; recording the slow way")
            self.enabled = False
            return None
