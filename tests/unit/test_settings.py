import pytest

from prism.settings import Settings, SettingsError

BASE = {
    "PRISM_INPUT_BUCKET": "in",
    "PRISM_OUTPUT_BUCKET": "out",
    "PRISM_TABLE_NAME": "table",
    "PRISM_VARIANTS_QUEUE_URL": "http://queue",
    "PRISM_CONFIG_PARAMETER": "/prism/pipeline-config",
}


def test_settings_parse_required_and_defaults() -> None:
    settings = Settings.from_env(
        {**BASE, "PRISM_UPLOAD_PREFIX": "uploads/", "PRISM_IO_CONCURRENCY": "8"}
    )
    assert settings.input_bucket == "in"
    assert settings.upload_prefix == "uploads/"
    assert settings.io_concurrency == 8
    assert settings.config_cache_seconds == 60
    assert settings.image_threads >= 1


def test_missing_variable_is_named() -> None:
    env = dict(BASE)
    del env["PRISM_TABLE_NAME"]
    with pytest.raises(SettingsError, match="PRISM_TABLE_NAME"):
        Settings.from_env(env)


@pytest.mark.parametrize("value", ["zero", "0", "-3"])
def test_bad_numbers_are_rejected(value: str) -> None:
    with pytest.raises(SettingsError, match="PRISM_IMAGE_THREADS"):
        Settings.from_env({**BASE, "PRISM_IMAGE_THREADS": value})


def test_config_cache_may_be_zero() -> None:
    assert Settings.from_env({**BASE, "PRISM_CONFIG_CACHE_SECONDS": "0"}).config_cache_seconds == 0


def test_the_source_memory_budget_follows_the_functions_memory() -> None:
    assert Settings.from_env(BASE).source_memory_mb == 1228  # 60 % of 2,048 MB
    lambda_env = {**BASE, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008"}
    assert Settings.from_env(lambda_env).source_memory_mb == 1804
    explicit = {**lambda_env, "PRISM_SOURCE_MEMORY_MB": "500"}
    assert Settings.from_env(explicit).source_memory_mb == 500
    assert Settings.from_env(BASE).source_concurrency == 2


def test_records_are_kept_90_days_unless_told() -> None:
    assert Settings.from_env(BASE).record_retention_days == 90
    kept = {**BASE, "PRISM_RECORD_RETENTION_DAYS": "30"}
    assert Settings.from_env(kept).record_retention_days == 30
    forever = {**BASE, "PRISM_RECORD_RETENTION_DAYS": "0"}
    assert Settings.from_env(forever).record_retention_days == 0


@pytest.mark.parametrize("value", ["-1", "ninety", "1.5"])
def test_bad_retentions_are_rejected(value: str) -> None:
    with pytest.raises(SettingsError, match="PRISM_RECORD_RETENTION_DAYS"):
        Settings.from_env({**BASE, "PRISM_RECORD_RETENTION_DAYS": value})
