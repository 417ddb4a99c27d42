"""The embedded AWS endpoint: moto's server application on 127.0.0.1, with two guards.

moto's own server (``moto.server.ThreadedMotoServer``) serves, beside the AWS APIs, its
management API under ``/moto-api/``: ``data.json`` lists every backend's state (each IAM
user's secret access key, the administrator's included), ``reset`` wipes it, ``recorder``
replays and downloads requests. Any local process could read or change the whole stack
through it. ``MotoEndpoint`` serves the same WSGI application (moto's
``DomainDispatcherApplication`` and request handler, on werkzeug's threaded server, as
``ThreadedMotoServer`` builds it) behind ``GuardedMotoApp``:

1. **No management API.** A request is refused (403, ``{"error": {...}}``, nothing else)
   when its path, percent-decoded as often as it decodes and lower-cased, mentions
   ``moto-api`` anywhere (``/moto-api``, ``//moto-api/``, ``/%6Doto-api/``, ``/MOTO-API/``),
   and, whatever the path, when moto would dispatch it to its management application
   (which it may choose from the path, or from a Host-like service name in a forged
   credential scope). No token opens it: the stack itself uses moto's in-process Python
   API (``moto_api_backend.reset()``), never HTTP. An S3 object whose key contains
   ``moto-api`` is therefore unreachable on this endpoint.
2. **One AWS request at a time.** moto's backends are not thread-safe: a DynamoDB
   conditional write or transaction is a read, a check and a write in Python, which two
   threads can interleave. DynamoDB applies each write atomically; so that conditions hold
   here as they do on AWS when many broker workers call at once, the application handles
   one request at a time (each takes milliseconds).

And one repair, while the endpoint runs (``fast_transactions``): moto's TransactWriteItems
deep-copies the whole table once per item of the transaction, to roll back on failure, so
each of the broker's ledger transactions costs time in proportion to everything the ledger
holds. Here a transaction snapshots only the items it names and puts back exactly those
when it fails (what moto's rollback restores of them): the same outcome, in time independent
of the table's size. Safe because requests are handled one at a time.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Self
from urllib.parse import unquote

__all__ = ["GuardedMotoApp", "MotoEndpoint", "names_moto_api"]

# moto's management application, by either of the names its dispatcher gives it.
REFUSED_BACKENDS = frozenset({"moto_api", "moto_api._internal"})
_MARK = "moto-api"
_REFUSAL = json.dumps(
    {
        "error": {
            "code": "forbidden",
            "message": "moto's management API is not served by the local stack",
        }
    },
    separators=(",", ":"),
).encode()

StartResponse = Callable[..., Any]


def names_moto_api(environ: dict[str, Any]) -> bool:
    """Whether the request's path (decoded, or as received), in any spelling, names moto's
    management API. The query string is not looked at: it never selects an application."""
    for key in ("PATH_INFO", "REQUEST_URI", "RAW_URI"):
        value = environ.get(key)
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(value, str):
            continue
        if key != "PATH_INFO":  # as received: a "?" starts the query
            value = value.partition("?")[0]
        if _MARK in _normalised(value):
            return True
    return False


def _normalised(path: str) -> str:
    """Percent-decoded until it no longer changes (bounded), lower-case, slashes folded."""
    for _ in range(8):
        decoded = unquote(path, encoding="latin-1")
        if decoded == path:
            break
        path = decoded
    return path.lower().replace("\\", "/")


class GuardedMotoApp:
    """moto's WSGI application without its management API, one request at a time."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self._dispatcher = DomainDispatcherApplication(create_backend_app)
        self._serial = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if names_moto_api(environ):
            return _refuse(start_response)
        app = self._dispatcher.get_application(environ)
        if getattr(app, "service", None) in REFUSED_BACKENDS:
            return _refuse(start_response)
        with self._serial:
            # Read to the end inside the lock: every change to moto's state happens here.
            result = app(environ, start_response)
            try:
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def _refuse(start_response: StartResponse) -> list[bytes]:
    start_response(
        "403 Forbidden",
        [("Content-Type", "application/json"), ("Content-Length", str(len(_REFUSAL)))],
    )
    return [_REFUSAL]


# --------------------------------------------------------------------------- transactions


class _CopyKeepingTables:
    """moto.dynamodb.models' ``copy`` module, except that a Table "copies" to itself: its
    transactions snapshot the items they name instead (``_transact_write_items``)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems with a rollback of the items it names only."""
    saved = [found for entry in transact_items if (found := _snapshot(backend, entry))]
    try:
        _ORIGINAL_TRANSACT[0](backend, transact_items)
    except Exception:
        for table, hash_value, range_value, item in reversed(saved):
            if item is None:
                table.delete_item(hash_value, range_value)
            elif range_value is None:
                table.items[hash_value] = item
            else:
                table.items[hash_value][range_value] = item
        raise


def _snapshot(backend: Any, entry: dict[str, Any]) -> tuple[Any, Any, Any, Any] | None:
    """(table, hash key, range key, a deep copy of the item or None), for an entry naming an
    existing table and a whole key; None otherwise (moto refuses it before changing it)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    try:
        ((_, op),) = entry.items()
        table = backend.tables[op["TableName"]]
        key = op["Item"] if "Item" in op else op["Key"]
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))


_ORIGINAL_TRANSACT: list[Any] = []


@contextlib.contextmanager
def fast_transactions() -> Iterator[None]:
    """moto's DynamoDB transactions roll back the items they name, not copies of whole
    tables, for as long as this lasts. Only while requests are handled one at a time."""
    import moto.dynamodb.models as models

    backend_class = models.DynamoDBBackend
    original_copy = models.copy
    _ORIGINAL_TRANSACT[:] = [backend_class.transact_write_items]
    backend_class.transact_write_items = _transact_write_items  # type: ignore[method-assign,assignment]
    models.copy = _CopyKeepingTables()  # type: ignore[assignment]
    try:
        yield
    finally:
        backend_class.transact_write_items = _ORIGINAL_TRANSACT[0]  # type: ignore[method-assign]
        models.copy = original_copy
        _ORIGINAL_TRANSACT.clear()


# --------------------------------------------------------------------------- the server


class MotoEndpoint:
    """``GuardedMotoApp`` on werkzeug's threaded server at http://127.0.0.1:PORT, with
    ``fast_transactions`` while it runs."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._patches = contextlib.ExitStack()
        self.url = ""

    def start(self) -> Self:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        server = make_server(
            self._host, self._port, GuardedMotoApp(), True, request_handler=MotoRequestHandler
        )
        self._patches.enter_context(fast_transactions())
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread
        self.url = f"http://{self._host}:{server.server_port}"
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        self._patches.close()
