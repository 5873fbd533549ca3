"""Exemplars on /metrics: a trace id on the histogram buckets, so a latency graph leads to a trace.

The OpenTelemetry Prometheus reader drops exemplars (opentelemetry-python PR #4178 is still open).
`ExemplarReader` is that reader keeping, from each collection, the exemplars of every histogram
bucket; `attach` puts them on the matching `_bucket` samples. Only the OpenMetrics format carries
exemplars, so /metrics sends them when the scraper asks for `application/openmetrics-text`
(Prometheus does when started with `--enable-feature=exemplar-storage`); the classic text format
is unchanged. The SDK records an exemplar only for measurements made inside a sampled span.
Under several workers, the exemplars are those of the worker that answers the scrape.
"""

from __future__ import annotations

from bisect import bisect_left

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.exporter.prometheus._mapping import map_unit, sanitize_full_name
from opentelemetry.sdk.metrics.export import Histogram, MetricsData
from opentelemetry.trace import format_span_id, format_trace_id
from prometheus_client import Metric
from prometheus_client.samples import Exemplar

# (bucket sample name, non-empty labels without `le`, le) -> the bucket's latest exemplar
Index = dict[tuple[str, frozenset, str], Exemplar]


def _bucket_name(metric_name: str, unit: str) -> str:
    """The `_bucket` sample name the Prometheus exporter gives an OTel histogram."""
    name = sanitize_full_name(metric_name)
    unit = map_unit(unit or "")
    if unit and not name.endswith(f"_{unit}"):
        name = f"{name}_{unit}"
    return f"{name}_bucket"


def index_exemplars(metrics_data: MetricsData) -> Index:
    index: Index = {}
    for resource_metrics in metrics_data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if not isinstance(metric.data, Histogram):
                    continue
                sample_name = _bucket_name(metric.name, metric.unit)
                for point in metric.data.data_points:
                    if not point.exemplars:
                        continue
                    labels = frozenset(
                        (sanitize_full_name(k), str(v))
                        for k, v in point.attributes.items()
                        if v != ""
                    )
                    bounds = list(point.explicit_bounds)
                    for exemplar in point.exemplars:
                        if not exemplar.trace_id:
                            continue
                        i = bisect_left(bounds, exemplar.value)  # buckets are (previous, bound]
                        le = f"{bounds[i]}" if i < len(bounds) else "+Inf"
                        index[(sample_name, labels, le)] = Exemplar(
                            {
                                "trace_id": format_trace_id(exemplar.trace_id),
                                "span_id": format_span_id(exemplar.span_id),
                            },
                            exemplar.value,
                            exemplar.time_unix_nano / 1e9,
                        )
    return index


class ExemplarReader(PrometheusMetricReader):
    """The OTel Prometheus reader, remembering each bucket's latest exemplar.

    The SDK hands out a bucket's exemplar only in the first collection after it was recorded, and
    collections happen between scrapes too (multi-worker snapshots), so they are kept here until a
    newer one replaces them: at most one per bucket.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.exemplars: Index = {}

    def _receive_metrics(self, metrics_data, timeout_millis: float = 10_000, **kwargs) -> None:
        if metrics_data is not None:
            self.exemplars.update(index_exemplars(metrics_data))
        super()._receive_metrics(metrics_data, timeout_millis, **kwargs)


def attach(families: list[Metric], index: Index) -> list[Metric]:
    """Put each bucket's exemplar on its `_bucket` sample (in place; returns `families`)."""
    if not index:
        return families
    for family in families:
        if family.type != "histogram":
            continue
        for i, sample in enumerate(family.samples):
            if not sample.name.endswith("_bucket"):
                continue
            labels = frozenset((k, v) for k, v in sample.labels.items() if k != "le" and v != "")
            exemplar = index.get((sample.name, labels, sample.labels.get("le", "")))
            if exemplar is not None:
                family.samples[i] = sample._replace(exemplar=exemplar)
    return families
