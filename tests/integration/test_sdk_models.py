"""Every SDK session of a local-stack process shares botocore's loader for its data path
(see prism_cli.local.sdk_models): each model file is read once per process."""

from __future__ import annotations

import botocore.session
import pytest

from prism_cli.local.sdk_models import share_sdk_models
from prism_cli.local.stack import MotoServer, StackClients

pytestmark = pytest.mark.integration


def test_sessions_share_one_loader_per_data_path(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    share_sdk_models()  # applied by the server already; calling it again changes nothing
    first, second = StackClients(moto_server.endpoint), StackClients(moto_server.endpoint)
    assert first.s3._loader is second.s3._loader  # type: ignore[attr-defined]
    assert first.s3._loader is first.sqs._loader  # type: ignore[attr-defined]
    # So the second session's model is the first one's, not read from disk again.
    first_model, second_model = first.s3.meta.service_model, second.s3.meta.service_model
    assert first_model._service_description is second_model._service_description  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_DATA_PATH", "/nonexistent-prism-models")
    elsewhere = botocore.session.Session().get_component("data_loader")
    assert elsewhere is not first.s3._loader  # type: ignore[attr-defined]
    assert "/nonexistent-prism-models" in elsewhere.search_paths


def test_clients_of_a_shared_loader_still_work(moto_server: MotoServer) -> None:
    clients = StackClients(moto_server.endpoint)
    clients.s3.create_bucket(Bucket="prism-shared-loader")
    clients.s3.put_object(Bucket="prism-shared-loader", Key="k", Body=b"v")
    again = StackClients(moto_server.endpoint)
    assert again.s3.get_object(Bucket="prism-shared-loader", Key="k")["Body"].read() == b"v"
    again.s3.delete_object(Bucket="prism-shared-loader", Key="k")
    again.s3.delete_bucket(Bucket="prism-shared-loader")
