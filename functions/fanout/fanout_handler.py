"""Fan-out Lambda: uploads queue (S3 notifications, backfill requests) -> one
variants-queue message per variant."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from prism.batch import process_sqs_batch
from prism.observability import logger, metrics, tracer
from prism.pipeline_source import load_pipeline_config
from prism.settings import current_settings
from prism.wiring import fan_out_batch


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = current_settings()
    config = load_pipeline_config(settings.config_parameter, settings.config_cache_seconds)
    return process_sqs_batch(
        event, context, functools.partial(fan_out_batch, settings=settings, config=config)
    )
