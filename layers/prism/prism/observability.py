"""The Powertools logger, metrics and tracer shared by both functions.

Service name, namespace and level come from the POWERTOOLS_* variables that
``template.yaml`` sets, so nothing is configured here.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

# The modules X-Ray traces: the functions reach AWS only through aiobotocore. Patching
# everything X-Ray knows (its default) also imports requests, sqlite3 and botocore's
# patchers in Lambda: 4.5 MB more of every container's memory, for nothing traced.
TRACED_MODULES = ("aiobotocore",)

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=TRACED_MODULES)


# Metrics with a dimension of their own go out as single metrics (Powertools' way: a
# dimension added to ``metrics`` would apply to every metric of the invocation). Both
# dimensions are small sets: the failure reasons, and a pipeline's variant names (at most
# 50); each pair is one CloudWatch custom metric.
def count_failure(reason: str) -> None:
    """One variant failed or skipped, counted by its reason (the dashboard's breakdown)."""
    with single_metric(name="FailuresByReason", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="reason", value=reason)


def record_render_time(variant: str, milliseconds: float) -> None:
    """How long one variant took to render, by variant name."""
    with single_metric(
        name="RenderDurationByVariant", unit=MetricUnit.Milliseconds, value=milliseconds
    ) as metric:
        metric.add_dimension(name="variant", value=variant)
