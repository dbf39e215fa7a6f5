"""``workflow.metric_meter()``: a meter that records nothing while the workflow replays.

A replayed workflow task runs the same code again; what it recorded the first
time stays recorded, so metrics are only taken when code runs for real, as in
temporalio's worker.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Generic, Self, TypeVar

from temporalio.common import (
    MetricAttributes,
    MetricCommon,
    MetricCounter,
    MetricGauge,
    MetricGaugeFloat,
    MetricHistogram,
    MetricHistogramFloat,
    MetricHistogramTimedelta,
    MetricMeter,
)

__all__ = ["ReplaySafeMeter"]

_M = TypeVar("_M", bound=MetricCommon)


class ReplaySafeMeter(MetricMeter):
    """Wraps ``meter``; its metrics record only while ``replaying()`` is false."""

    def __init__(self, meter: MetricMeter, replaying: Callable[[], bool]) -> None:
        self._meter = meter
        self._replaying = replaying

    def create_counter(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricCounter:
        return _Counter(self._meter.create_counter(name, description, unit), self._replaying)

    def create_histogram(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricHistogram:
        made = self._meter.create_histogram(name, description, unit)
        return _Histogram(made, self._replaying)

    def create_histogram_float(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricHistogramFloat:
        made = self._meter.create_histogram_float(name, description, unit)
        return _HistogramFloat(made, self._replaying)

    def create_histogram_timedelta(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricHistogramTimedelta:
        made = self._meter.create_histogram_timedelta(name, description, unit)
        return _HistogramTimedelta(made, self._replaying)

    def create_gauge(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricGauge:
        return _Gauge(self._meter.create_gauge(name, description, unit), self._replaying)

    def create_gauge_float(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricGaugeFloat:
        made = self._meter.create_gauge_float(name, description, unit)
        return _GaugeFloat(made, self._replaying)

    def with_additional_attributes(self, additional_attributes: MetricAttributes) -> MetricMeter:
        return ReplaySafeMeter(
            self._meter.with_additional_attributes(additional_attributes), self._replaying
        )


class _Wrapped(MetricCommon, Generic[_M]):
    def __init__(self, metric: _M, replaying: Callable[[], bool]) -> None:
        self._metric = metric
        self._replaying = replaying

    @property
    def name(self) -> str:
        return self._metric.name

    @property
    def description(self) -> str | None:
        return self._metric.description

    @property
    def unit(self) -> str | None:
        return self._metric.unit

    def with_additional_attributes(self, additional_attributes: MetricAttributes) -> Self:
        return type(self)(
            self._metric.with_additional_attributes(additional_attributes), self._replaying
        )


class _Counter(_Wrapped[MetricCounter], MetricCounter):
    def add(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        if not self._replaying():
            self._metric.add(value, additional_attributes)


class _Histogram(_Wrapped[MetricHistogram], MetricHistogram):
    def record(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        if not self._replaying():
            self._metric.record(value, additional_attributes)


class _HistogramFloat(_Wrapped[MetricHistogramFloat], MetricHistogramFloat):
    def record(self, value: float, additional_attributes: MetricAttributes | None = None) -> None:
        if not self._replaying():
            self._metric.record(value, additional_attributes)


class _HistogramTimedelta(_Wrapped[MetricHistogramTimedelta], MetricHistogramTimedelta):
    def record(
        self, value: timedelta, additional_attributes: MetricAttributes | None = None
    ) -> None:
        if not self._replaying():
            self._metric.record(value, additional_attributes)


class _Gauge(_Wrapped[MetricGauge], MetricGauge):
    def set(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        if not self._replaying():
            self._metric.set(value, additional_attributes)


class _GaugeFloat(_Wrapped[MetricGaugeFloat], MetricGaugeFloat):
    def set(self, value: float, additional_attributes: MetricAttributes | None = None) -> None:
        if not self._replaying():
            self._metric.set(value, additional_attributes)
