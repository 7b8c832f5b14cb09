"""boto3 clients: created lazily, one per service for the process, with explicit retries and timeouts.

boto3 is imported on first use, not at module import, so importing a handler stays cheap.
boto3 clients are thread-safe once built but building one from a shared session is not, so creation
is serialised and the one client per service is shared by every thread.

Example::

    from kendra_ingest import aws
    aws.client("dynamodb").get_item(...)
"""

from __future__ import annotations

import threading
from typing import Any

#: botocore attempts (first try included) per service. Kendra gets one: the library retries throttled
#: calls and ``InternalError`` documents itself with jittered backoff that stops before the Lambda's
#: deadline and counts every throttle; botocore's own throttle backoff (up to 20 s) knows no deadline.
MAX_ATTEMPTS: dict[str, int] = {"kendra": 1}
DEFAULT_MAX_ATTEMPTS = 5

CONNECT_TIMEOUT_SECONDS = 5
#: A 50 MB BatchPutDocument takes a while to be accepted; everything else answers quickly.
READ_TIMEOUT_SECONDS: dict[str, int] = {"kendra": 60}
DEFAULT_READ_TIMEOUT_SECONDS = 30

_create_lock = threading.Lock()
_session: Any = None
_clients: dict[str, Any] = {}


def _config(service: str) -> Any:
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS.get(service, DEFAULT_MAX_ATTEMPTS)},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS.get(service, DEFAULT_READ_TIMEOUT_SECONDS),
    )


def client(service: str) -> Any:
    """The process's boto3 client for ``service`` (built once, then shared by every thread).

    botocore clients are thread-safe once built; building one is slow (tens of milliseconds) and not
    thread-safe from a shared session, so it happens once per service under a lock. A per-thread cache
    would rebuild clients for every worker thread of every invocation.
    """
    found = _clients.get(service)
    if found is not None:
        return found
    global _session
    with _create_lock:
        found = _clients.get(service)
        if found is None:
            if _session is None:
                import boto3.session

                _session = boto3.session.Session()
            found = _session.client(service, config=_config(service))
            # botocore builds ``client.exceptions`` lazily and without a lock: threads touching it for
            # the first time at once can get different classes, and ``except client.exceptions.X``
            # then misses the X another thread's class raised. Build them here, before any thread
            # sees the client.
            _ = found.exceptions
            _clients[service] = found
    return found


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (None for anything else).

    Comparing codes rather than catching ``client.exceptions.X`` classes is immune to which client
    (or which thread's lazily built class) raised the error.
    """
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code is not None else None


def is_error(exc: BaseException, *codes: str) -> bool:
    """Whether ``exc`` is a ``ClientError`` with one of ``codes``."""
    return error_code(exc) in codes


def reset_clients() -> None:
    """Forget every cached client and the session (tests, sandbox: after changing env or mocks)."""
    global _session
    with _create_lock:
        _session = None
        _clients.clear()
