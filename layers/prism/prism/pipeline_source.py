"""Where a running function gets its pipeline config: the SSM parameter named in the template."""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools.utilities import parameters

from prism.config import PipelineConfig, check_config_size, default_config, parse_config

# The parameter's value that selects the built-in config (a parameter cannot be empty).
BUILT_IN = "default"


def load_pipeline_config(parameter_name: str, max_age_seconds: int) -> PipelineConfig:
    """Read (cached by Powertools for ``max_age_seconds``) and validate the config.

    An invalid config raises ``ConfigError``: that is a deployment mistake, so the upload is
    retried and, if nobody fixes the parameter, lands in the uploads DLQ rather than vanishing.
    """
    text = parameters.get_parameter(parameter_name, max_age=max_age_seconds)
    return config_from_parameter(text, f"SSM parameter {parameter_name}")


def is_built_in(text: str) -> bool:
    """Whether a config parameter's value selects the built-in config."""
    return text.strip() == BUILT_IN


@lru_cache(maxsize=8)
def config_from_parameter(text: str, label: str) -> PipelineConfig:
    """The config a parameter's value stands for: the built-in one, or ``text`` validated
    (``label`` names it in errors). Its size is checked before anything else reads it."""
    check_config_size(text, label)
    if is_built_in(text):
        return default_config()
    return parse_config(text, label)
