"""Fan-out Lambda: uploads queue (S3 notifications) -> one variants-queue message per variant."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from prism.batch import SharedBatch
from prism.fanout import fan_out_batch
from prism.observability import logger, metrics, tracer
from prism.pipeline_source import load_pipeline_config
from prism.settings import current_settings


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = current_settings()
    config = load_pipeline_config(settings.config_parameter, settings.config_cache_seconds)
    batch = SharedBatch(
        functools.partial(fan_out_batch, list(SQSEvent(event).records), settings, config)
    )
    return dict(
        async_process_partial_response(
            event=event,
            record_handler=batch.handle_record,
            processor=AsyncBatchProcessor(event_type=EventType.SQS),
            context=context,
        )
    )
