"""The Powertools logger, metrics and tracer shared by both functions.

Service name, namespace and level come from the POWERTOOLS_* variables that
``template.yaml`` sets, so nothing is configured here.
"""

from collections.abc import Mapping, Sequence

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit, single_metric

# The modules X-Ray traces: the functions reach AWS only through aiobotocore. Patching
# everything X-Ray knows (its default) also imports requests, sqlite3 and botocore's
# patchers in Lambda: 4.5 MB more of every container's memory, for nothing traced.
TRACED_MODULES = ("aiobotocore",)

# Values one EMF document may carry for a metric.
_EMF_VALUES = 100

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=TRACED_MODULES)


# Metrics with a dimension of their own go out in documents of their own (Powertools'
# single or ephemeral metrics: a dimension added to ``metrics`` would apply to every
# metric of the invocation). Both
# dimensions are small sets: the failure reasons, and a pipeline's variant names (at most
# 50); each pair is one CloudWatch custom metric.
def count_failure(reason: str) -> None:
    """One variant failed or skipped, counted by its reason (the dashboard's breakdown)."""
    with single_metric(name="FailuresByReason", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="reason", value=reason)


def record_render_times(durations: Mapping[str, Sequence[float]]) -> None:
    """How long each variant took to render (ms), by variant name: one metrics document
    per variant for a whole batch, its values together (EMF takes up to 100 a metric)."""
    for variant, values in sorted(durations.items()):
        for start in range(0, len(values), _EMF_VALUES):
            metric = EphemeralMetrics()
            metric.add_dimension(name="variant", value=variant)
            for value in values[start : start + _EMF_VALUES]:
                metric.add_metric(
                    name="RenderDurationByVariant", unit=MetricUnit.Milliseconds, value=value
                )
            metric.flush_metrics()
