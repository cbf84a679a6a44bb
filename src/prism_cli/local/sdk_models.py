"""One botocore loader for every SDK session of a local-stack process.

A botocore session reads the service models and the endpoint table from disk into a
loader of its own, and keeps them there for its clients. A local run has several
sessions: moto's (it asks botocore for each service's regions), the stack's setup and
polling clients, the functions' aioboto3 session, the CLI's; a test session makes two
more for every stack it starts. Each read botocore's ``endpoints.json`` (1.2 MB of JSON)
and the models of S3, SQS, DynamoDB, SSM and EventBridge again: 1.1 s of a one-photo
``prism run`` on a slow machine, where ``endpoints.json`` alone took 0.14 s each time.

Here every session made from then on gets the one loader made for its data path
(``AWS_DATA_PATH``), so each file is read once per process (the functions' aioboto3
session, made when ``prism.aws.clients`` is imported, keeps its own). The models are
read-only once loaded (all the clients of one session already share them); moto's own
models, with its extras, come from a loader of moto's, which this does not touch.
"""

from __future__ import annotations

import functools
import threading

from prism_cli.local.moto_locking import applied_once

_lock = threading.RLock()


@applied_once(_lock)
def share_sdk_models() -> None:
    """Make botocore sessions created from now on share loaders (idempotent)."""
    import botocore.loaders
    import botocore.session

    # ``Session`` calls the name it imported, with the session's data path.
    botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)
