"""The Powertools logger, metrics and tracer shared by both functions.

Service name, namespace and level come from the POWERTOOLS_* variables that
``template.yaml`` sets, so nothing is configured here.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
metrics = Metrics()
tracer = Tracer()
