"""Worker Lambda: variants queue -> rendered variants in the output bucket + processing log."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from prism.batch import process_sqs_batch
from prism.observability import logger, metrics, tracer
from prism.settings import current_settings
from prism.wiring import render_batch


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    render = functools.partial(
        render_batch,
        settings=current_settings(),
        remaining_ms=context.get_remaining_time_in_millis,
    )
    return process_sqs_batch(event, context, render)
