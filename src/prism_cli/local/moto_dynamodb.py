"""Make moto's DynamoDB backend safe and fast under Prism's load.

Five patches to this process's moto DynamoDB backend (:func:`serialise_dynamodb`):

- **One lock.** moto's server answers requests on many threads, but its DynamoDB backend is
  not thread-safe: ``transact_write_items`` snapshots the tables first and, when a condition
  fails (as it does for every redelivered message), restores that snapshot, silently
  discarding what other threads wrote in between. Real DynamoDB is atomic per item, and
  Prism's exact counts rely on that, so every DynamoDB operation runs under one lock.
- **Item-level rollback.** moto 5.2 deep-copies every table a transaction touches before
  applying it, so each transaction costs time and memory in proportion to the table's size
  and a local run with one transaction per outcome is quadratic. With operations
  serialised, a transaction only needs the prior state of the items it names: those
  (table, hash key, range key) slots are copied before moto runs its unchanged transaction
  logic (so conditions, ``CancellationReasons`` and validation errors are moto's own), and
  on any failure exactly those slots are put back. Indexes are derived from the items, so
  they follow. The table copy moto still asks for is handed the live table instead.
- **Partition queries.** moto answers every query by sorting all of the table's items and
  filtering them by hash key, so a query's cost grows with the table. A query on the
  table's own key (not an index) only ever returns items of one partition, so moto's query
  is handed just that partition's items; it filters, sorts, pages and projects them as
  before. (Index queries still see every item.)
- **Client request tokens.** DynamoDB makes ``TransactWriteItems`` idempotent by its
  ``ClientRequestToken`` (botocore fills one in and reuses it when it retries): a repeat of
  a committed transaction within 10 minutes succeeds without applying it again, and a
  repeat with different items is refused. moto ignores the token, so a retry after a lost
  response would fail its own conditions; with this patch it behaves as DynamoDB does.
- **Plain JSON responses.** moto serialises every response by walking the operation's
  output shape from botocore's model, member by member, item attribute by item attribute:
  the largest cost of a local run's DynamoDB requests. The item operations' results are
  already in DynamoDB's wire format (``{"S": ...}`` values; binary values become base64,
  as on the wire), so a successful one is written with ``json.dumps`` instead, members
  that are None left out as the serialiser leaves them out. Errors, and any result holding
  something else (a timestamp, say), go through moto's serialiser as before.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prism_cli.local.moto_locking import applied_once, lock_methods

_OPERATIONS = (
    "put_item",
    "get_item",
    "query",
    "scan",
    "update_item",
    "delete_item",
    "transact_write_items",
)
# How long DynamoDB remembers a transaction's client request token.
TOKEN_TTL_SECONDS = 600.0

_lock = threading.RLock()
# Set while moto's transact_write_items runs in this thread: its table "backup" is then
# the live table (the items it touches are saved by _ItemSnapshot instead).
_sharing_tables = threading.local()


@applied_once(_lock)
def serialise_dynamodb() -> None:
    """Patch this process's moto DynamoDB backend as the module doc says (idempotent)."""
    from moto.core.responses import ActionResult
    from moto.dynamodb import models, responses
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    # moto's models module calls ``copy.deepcopy`` through its own ``copy`` name.
    vars(models)["copy"] = _TableSharingCopy(Table)
    Table.query = _partition_query(Table.query)  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = _with_item_rollback(  # type: ignore[method-assign]
        DynamoDBBackend.transact_write_items
    )
    lock_methods(DynamoDBBackend, _OPERATIONS, _lock)
    responses.DynamoHandler.transact_write_items = _idempotent(  # type: ignore[method-assign]
        responses.DynamoHandler.transact_write_items
    )
    responses.DynamoHandler.serialized = _plain_json(  # type: ignore[method-assign]
        responses.DynamoHandler.serialized, (ActionResult, responses.DynamoResult)
    )


# --- item-level rollback ---------------------------------------------------------------------
class _TableSharingCopy:
    """The ``copy`` module, except that a table deep-copied inside a transaction is shared."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        if isinstance(value, self._table_type) and getattr(_sharing_tables, "active", False):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


@dataclass
class _Slot:
    """The state of one item before a transaction: a copy of it, or None if absent."""

    table: Any  # moto's Table
    hash_key: Any  # DynamoType
    range_key: Any  # DynamoType | None
    item: Any  # a deep copy of moto's Item, or None
    bucket_existed: bool  # for tables with a range key: the hash key's dict existed


class _ItemSnapshot:
    """The prior state of every item a transaction names, and of the tables' streams."""

    def __init__(self, backend: Any, transact_items: Any) -> None:
        self._slots: list[_Slot] = []
        self._streams: list[tuple[Any, list[Any], int]] = []
        tables: dict[int, Any] = {}
        for entry in transact_items if isinstance(transact_items, list) else []:
            slot = self._slot(backend, entry)
            if slot is not None:
                self._slots.append(slot)
                tables[id(slot.table)] = slot.table
        for table in tables.values():
            shard = table.stream_shard
            if shard is not None:
                self._streams.append((shard, shard.items, len(shard.items)))

    @staticmethod
    def _slot(backend: Any, entry: Any) -> _Slot | None:
        """The item ``entry`` writes; None if moto would reject it before writing."""
        from moto.dynamodb.models.dynamo_type import DynamoType

        try:
            op_type, op = next(iter(entry.items()))
            table = backend.get_table(op["TableName"])
            key = op["Item"] if op_type == "Put" else op["Key"]
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = None
            if table.range_key_attr is not None:
                range_key = DynamoType(key[table.range_key_attr])
        except Exception:  # malformed: moto raises its own error for it without writing it
            return None
        if range_key is None:
            item = table.items.get(hash_key)
            bucket_existed = True
        else:
            # ``items`` is a defaultdict: look without creating the hash key's dict.
            bucket = table.items.get(hash_key)
            bucket_existed = bucket is not None
            item = bucket.get(range_key) if bucket is not None else None
        return _Slot(table, hash_key, range_key, copy.deepcopy(item), bucket_existed)

    def restore(self) -> None:
        for slot in self._slots:
            items = slot.table.items
            if slot.range_key is None:
                if slot.item is None:
                    items.pop(slot.hash_key, None)
                else:
                    items[slot.hash_key] = slot.item
                continue
            if slot.item is not None:
                items[slot.hash_key][slot.range_key] = slot.item
                continue
            bucket = items.get(slot.hash_key)
            if bucket is not None:
                bucket.pop(slot.range_key, None)
                if not bucket and not slot.bucket_existed:
                    del items[slot.hash_key]
        for shard, records, length in self._streams:
            # Records already handed to a Lambda event source (the list was replaced) stay.
            if shard.items is records:
                del records[length:]


def _with_item_rollback(transact: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(transact)
    def transact_write_items(self: Any, transact_items: Any) -> Any:
        with _lock:
            snapshot = _ItemSnapshot(self, transact_items)
            _sharing_tables.active = True
            try:
                return transact(self, transact_items)
            except BaseException:
                # moto's own "restore" put the live tables back; undo the writes it made.
                # (Any failure: moto leaves some errors, e.g. two operations in one entry,
                # without a rollback, while DynamoDB applies all or nothing.)
                snapshot.restore()
                raise
            finally:
                _sharing_tables.active = False

    return transact_write_items


# --- partition queries -----------------------------------------------------------------------
# Table.query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
#             scan_index_forward, projection_expressions, index_name=None, ...)
_INDEX_NAME_POSITION = 6  # in the arguments after hash_key


def _partition_query(query: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(query)
    def run(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        if len(args) > _INDEX_NAME_POSITION:
            index_name = args[_INDEX_NAME_POSITION]
        else:
            index_name = kwargs.get("index_name")
        if index_name is not None or hash_key is None:
            return query(self, hash_key, *args, **kwargs)
        with _lock:
            bucket = self.items.get(hash_key)  # a defaultdict: look without creating
            if bucket is None:
                partition = []
            elif self.range_key_attr is not None:
                partition = list(bucket.values())
            else:
                partition = [bucket]
            # moto's query takes its candidates from all_items(): this partition's only.
            self.all_items = lambda: partition
            try:
                return query(self, hash_key, *args, **kwargs)
            finally:
                del self.all_items

    return run


# --- client request tokens -------------------------------------------------------------------
@dataclass(frozen=True)
class _Committed:
    fingerprint: str
    at: float


# Committed tokens, oldest first (for expiry).
_tokens: OrderedDict[tuple[str, str, str], _Committed] = OrderedDict()


def _idempotent_parameter_mismatch() -> Exception:
    from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException

    return DynamodbException(
        ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
        "The request uses the same client token as a previous, but non-identical request.",
    )


def _idempotent(action: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(action)
    def transact_write_items(self: Any) -> Any:
        token = self.body.get("ClientRequestToken")
        if not token:
            return action(self)
        fingerprint = hashlib.sha256(
            json.dumps(
                self.body.get("TransactItems"), sort_keys=True, default=_fingerprinted
            ).encode()
        ).hexdigest()
        key = (str(self.current_account), str(self.region), str(token))
        with _lock:
            now = time.monotonic()
            while _tokens and now - next(iter(_tokens.values())).at > TOKEN_TTL_SECONDS:
                _tokens.popitem(last=False)
            seen = _tokens.get(key)
            if seen is None:
                result = action(self)  # raises if the transaction was cancelled
                _tokens[key] = _Committed(fingerprint, now)
                return result
            if seen.fingerprint != fingerprint:
                raise _idempotent_parameter_mismatch()
            from moto.core.responses import ActionResult

            return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})

    return transact_write_items


def _fingerprinted(value: Any) -> Any:
    """What ``json.dumps`` cannot write in a request: moto parses B and BS values to bytes."""
    if isinstance(value, bytes):
        return {"B": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"cannot fingerprint {type(value).__name__}")


# --- plain JSON responses --------------------------------------------------------------------
# Operations whose successful results are item data in the wire format, and plain counts.
_PLAIN_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
# DynamoDB's JSON protocol version (botocore's model: "jsonVersion").
_CONTENT_TYPE = "application/x-amz-json-1.0"


class _NotPlain(Exception):
    """A value ``json.dumps`` cannot write as moto's serialiser would."""


def _wire(value: Any) -> Any:
    """``value`` as the JSON protocol writes it; _NotPlain for anything but JSON values
    and bytes."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [_wire(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise _NotPlain(type(value).__name__)


def _plain_json(
    serialized: Callable[..., Any], plain_results: tuple[type, ...]
) -> Callable[..., Any]:
    @functools.wraps(serialized)
    def run(self: Any, action_result: Any) -> Any:
        result = action_result.result
        if (
            type(action_result) in plain_results
            and isinstance(result, dict)
            and self._get_action() in _PLAIN_OPERATIONS
        ):
            try:
                body = json.dumps(_wire(result), separators=(",", ":"))
            except _NotPlain:
                pass
            else:
                headers = {"Content-Type": _CONTENT_TYPE, **self.response_headers}
                return 200, headers, body
        return serialized(self, action_result)

    return run
