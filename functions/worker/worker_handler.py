"""Worker Lambda: variants queue -> rendered variants in the output bucket + processing log."""

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
from prism.observability import logger, metrics, tracer
from prism.settings import current_settings
from prism.worker import render_batch


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch = SharedBatch(
        functools.partial(render_batch, list(SQSEvent(event).records), current_settings())
    )
    return dict(
        async_process_partial_response(
            event=event,
            record_handler=batch.handle_record,
            processor=AsyncBatchProcessor(event_type=EventType.SQS),
            context=context,
        )
    )
