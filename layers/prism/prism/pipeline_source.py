"""Where a running function gets its pipeline config: the SSM parameter named in the template."""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools.utilities import parameters

from prism.config import PipelineConfig, default_config, parse_config

# The parameter's value that selects the built-in config (a parameter cannot be empty).
BUILT_IN = "default"


def load_pipeline_config(parameter_name: str, max_age_seconds: int) -> PipelineConfig:
    """Read (cached by Powertools for ``max_age_seconds``) and validate the config.

    An invalid config raises ``ConfigError``: that is a deployment mistake, so the upload is
    retried and, if nobody fixes the parameter, lands in the uploads DLQ rather than vanishing.
    """
    text = parameters.get_parameter(parameter_name, max_age=max_age_seconds)
    return _parse(text, parameter_name)


@lru_cache(maxsize=8)
def _parse(text: str, parameter_name: str) -> PipelineConfig:
    if text.strip() == BUILT_IN:
        return default_config()
    return parse_config(text, f"SSM parameter {parameter_name}")
