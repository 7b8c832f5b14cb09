"""The sandbox's in-process Lambda runtime.

moto runs Lambda code in Docker, which these machines do not have. Every invoke path (boto3 clients,
the Step Functions interpreter, S3/SNS/EventBridge deliveries) goes through
``moto.awslambda.models.LambdaFunction.invoke`` (seen with moto 5.2.x), so
:func:`installed` replaces that one method: it imports the function's configured handler module from
the code directories (``functions/`` by default) and calls ``handler(event, context)`` in this process,
with the function's configured environment applied as a per-thread overlay on ``os.environ``.

Usage, inside an active ``moto.mock_aws``::

    deployment = deploy(config, stack="sfn")
    with installed(deployment) as runtime:
        runtime.invoke_local("my-function", {"k": "v"})
        ...
        runtime.wait_idle()
    assert not runtime.errors()
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.deploy import Deployment

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


# --------------------------------------------------------------------------------------------------
# Per-thread environment overlay on the one os.environ object
# --------------------------------------------------------------------------------------------------

_DELETED = object()
_local = threading.local()


def _overlay() -> dict[str, Any] | None:
    return getattr(_local, "overlay", None)


class _OverlayEnviron(os._Environ):  # type: ignore[name-defined,misc]
    """``os.environ`` whose reads consult the calling thread's overlay first.

    botocore sessions keep a reference to the ``os.environ`` object itself, so the
    object must stay the same: :func:`enable_env_overlay` swaps its class, not the object. Threads
    without an overlay see (and write) the real process environment unchanged.
    """

    def __getitem__(self, key: str) -> str:
        overlay = _overlay()
        if overlay is not None and key in overlay:
            value = overlay[key]
            if value is _DELETED:
                raise KeyError(key)
            return value
        return super().__getitem__(key)

    def __setitem__(self, key: str, value: str) -> None:
        overlay = _overlay()
        if overlay is None:
            super().__setitem__(key, value)
            return
        # A handler's writes stay in its invocation, as they would in its own Lambda sandbox.
        if not isinstance(value, str):
            raise TypeError(f"str expected, not {type(value).__name__}")
        overlay[key] = value

    def __delitem__(self, key: str) -> None:
        overlay = _overlay()
        if overlay is None:
            super().__delitem__(key)
            return
        if key not in self:
            raise KeyError(key)
        overlay[key] = _DELETED

    def _visible_keys(self) -> list[str]:
        overlay = _overlay()
        base = list(super().__iter__())
        if overlay is None:
            return base
        present = set(base)
        keys = [k for k in base if overlay.get(k) is not _DELETED]
        keys.extend(k for k, v in overlay.items() if v is not _DELETED and k not in present)
        return keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._visible_keys())

    def __len__(self) -> int:
        return len(self._visible_keys())

    def copy(self) -> dict[str, str]:
        return {k: self[k] for k in self._visible_keys()}


_env_lock = threading.Lock()
_env_users = 0
_original_thread_start: Callable[..., None] | None = None


def _thread_start_with_overlay(self: threading.Thread) -> None:
    # A thread a handler starts (a ThreadPoolExecutor worker, boto3 transfer threads) belongs to the
    # same Lambda sandbox and must see the same environment; threading.local is not inherited.
    overlay = _overlay()
    if overlay is not None:
        run = self.run

        def run_with_overlay() -> None:
            _local.overlay = overlay
            try:
                run()
            finally:
                _local.overlay = None

        self.run = run_with_overlay  # type: ignore[method-assign]
    assert _original_thread_start is not None
    _original_thread_start(self)


def enable_env_overlay() -> None:
    """Make ``os.environ`` overlay-aware (reference counted; see :func:`disable_env_overlay`)."""
    global _env_users, _original_thread_start
    with _env_lock:
        _env_users += 1
        if _env_users == 1:
            os.environ.__class__ = _OverlayEnviron
            _original_thread_start = threading.Thread.start
            threading.Thread.start = _thread_start_with_overlay  # type: ignore[method-assign]


def disable_env_overlay() -> None:
    """Undo one :func:`enable_env_overlay`; the last one restores the plain ``os._Environ``."""
    global _env_users, _original_thread_start
    with _env_lock:
        _env_users -= 1
        if _env_users == 0:
            os.environ.__class__ = os._Environ  # type: ignore[attr-defined]
            if _original_thread_start is not None:
                threading.Thread.start = _original_thread_start  # type: ignore[method-assign]
            _original_thread_start = None


#: The overlay variable naming the running invocation (threads a handler starts inherit it).
INVOCATION_VAR = "SANDBOX_INVOCATION"


@dataclass
class InvocationLog:
    """What ``OUT/invocations.json`` holds for one invocation: its handler module, seconds and the
    AWS requests it made, by ``service:operation``."""

    function: str
    started: float
    seconds: float | None = None
    requests: dict[str, int] = field(default_factory=dict)

    def dump(self) -> dict[str, Any]:
        return {"function": self.function, "seconds": round(self.seconds or 0.0, 4),
                "requests": dict(sorted(self.requests.items()))}


def current_invocation() -> int | None:
    """The number of the invocation running on the calling thread (None outside any)."""
    overlay = _overlay()
    value = overlay.get(INVOCATION_VAR) if overlay is not None else None
    return int(value) if isinstance(value, str) else None


def current_function_name() -> str | None:
    """The name of the function whose invocation runs on the calling thread (None outside any).

    Read from the thread's overlay, not ``os.environ``: the process itself may carry the variable.
    """
    overlay = _overlay()
    name = overlay.get("AWS_LAMBDA_FUNCTION_NAME") if overlay is not None else None
    return name if isinstance(name, str) else None


@contextmanager
def env_overlay(variables: dict[str, str]) -> Iterator[None]:
    """Apply ``variables`` to ``os.environ`` for the calling thread only (requires the overlay enabled)."""
    previous = _overlay()
    _local.overlay = dict(variables)
    try:
        yield
    finally:
        _local.overlay = previous


# --------------------------------------------------------------------------------------------------
# The runtime
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    """One in-process invocation of a function."""

    function_name: str
    request_id: str
    invocation_type: str  # RequestResponse | Event | Local
    started_at: float
    duration_seconds: float
    error_type: str | None = None
    error_message: str | None = None
    timed_out: bool = False  # ran longer than the configured timeout (recorded, not enforced)


class FunctionError(Exception):
    """Raised by :meth:`LambdaRuntime.invoke_local` when the handler raised (carries the error payload)."""

    def __init__(self, payload: dict[str, Any], cause: BaseException) -> None:
        super().__init__(f"{payload['errorType']}: {payload['errorMessage']}")
        self.payload = payload
        self.error_type: str = payload["errorType"]
        self.cause = cause


class LambdaContext:
    """The fields of the Python runtime's context object that handlers and Powertools read."""

    def __init__(self, function_name: str, function_arn: str, memory_mb: int, timeout_s: float,
                 request_id: str | None = None) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"sandbox/[$LATEST]{self.aws_request_id.replace('-', '')}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the configured timeout (never negative)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class _FunctionConfig:
    name: str
    arn: str
    handler: str
    environment: dict[str, str]
    timeout: float
    memory: int


def _config_of(fn: Any) -> _FunctionConfig:
    """Read the configuration moto stores for a function (what create_function was given)."""
    return _FunctionConfig(
        name=fn.function_name,
        arn=f"arn:aws:lambda:{fn.region}:{fn.account_id}:function:{fn.function_name}",
        handler=fn.handler,
        environment={str(k): str(v) for k, v in (fn.environment_vars or {}).items()},
        timeout=float(fn.timeout or 3),
        memory=int(fn.memory_size or 128),
    )


def error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The payload Lambda's Python runtime returns for an uncaught exception.

    Step Functions reads ``errorType`` as the error name (what Retry/Catch ``ErrorEquals`` match),
    so it must be the exception's class name, as on AWS.
    """
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


class LambdaRuntime:
    """Runs deployed functions' handlers in this process; records every invocation."""

    def __init__(self, code_dirs: Iterable[Path], *, async_workers: int = 16) -> None:
        self.code_dirs = [Path(d).resolve() for d in code_dirs]
        self.invocations: list[Invocation] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=async_workers, thread_name_prefix="lambda-async")
        self._pending: set[Future[Any]] = set()
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        #: Every invocation in start order (``OUT/invocations.json``).
        self.invocation_logs: list[InvocationLog] = []

    # -- handler resolution ------------------------------------------------------------------------

    def _handler(self, handler: str) -> Callable[[Any, Any], Any]:
        with self._lock:
            cached = self._handlers.get(handler)
        if cached is not None:
            return cached
        module_name, _, attr = handler.rpartition(".")
        if not module_name:
            raise ImportError(f"handler {handler!r} is not <module>.<function>")
        # Imports run outside our lock (the import system has its own); a module imports once.
        module = importlib.import_module(module_name)
        fn = getattr(module, attr, None)
        if not callable(fn):
            raise ImportError(f"handler {handler!r}: {module_name} has no callable {attr!r}")
        with self._lock:
            self._handlers[handler] = fn
        return fn

    # -- running -----------------------------------------------------------------------------------

    def _environment(self, cfg: _FunctionConfig) -> dict[str, str]:
        env = {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_NAME": cfg.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{cfg.name}",
            "_HANDLER": cfg.handler,
        }
        env.update(cfg.environment)
        # No X-Ray daemon in the sandbox: a Tracer that believes it is in Lambda would try to emit.
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
        return env

    def _run(self, cfg: _FunctionConfig, event: Any, invocation_type: str,
             request_id: str | None = None) -> tuple[Any, dict[str, Any] | None]:
        """Run the handler; return (result, None) or (None, error payload). Never raises."""
        context = LambdaContext(cfg.name, cfg.arn, cfg.memory, cfg.timeout, request_id)
        started = time.time()
        t0 = time.monotonic()
        result: Any = None
        error: dict[str, Any] | None = None
        exc_obj: BaseException | None = None
        with self._lock:
            number = len(self.invocation_logs)
            log = InvocationLog(function=cfg.handler.rpartition(".")[0], started=started)
            self.invocation_logs.append(log)
        try:
            handler = self._handler(cfg.handler)
            with env_overlay({**self._environment(cfg), INVOCATION_VAR: str(number)}):
                result = handler(event, context)
            # What a real caller receives is the JSON serialization of the return value.
            result = json.loads(json.dumps(result))
        except (Exception, SystemExit) as exc:
            exc_obj = exc
            error = error_payload(exc, context.aws_request_id)
        duration = time.monotonic() - t0
        log.seconds = duration
        record = Invocation(
            function_name=cfg.name,
            request_id=context.aws_request_id,
            invocation_type=invocation_type,
            started_at=started,
            duration_seconds=duration,
            error_type=error["errorType"] if error else None,
            error_message=error["errorMessage"] if error else None,
            timed_out=duration > cfg.timeout,
        )
        with self._lock:
            self.invocations.append(record)
        if exc_obj is not None and error is not None:
            error["_exception"] = exc_obj
        return result, error

    def _function(self, function_name: str) -> Any:
        from moto.awslambda.models import lambda_backends

        name = function_name.split(":function:")[-1].split(":")[0]
        return lambda_backends[ACCOUNT_ID][REGION].get_function(name)

    def count_request(self, service: str, operation: str) -> None:
        """Charge one AWS request to the invocation running on the calling thread (if any)."""
        number = current_invocation()
        if number is None:
            return
        name = f"{service}:{operation}"
        with self._lock:
            requests = self.invocation_logs[number].requests
            requests[name] = requests.get(name, 0) + 1

    def invoke_local(self, function_name: str, event: Any, *, request_id: str | None = None) -> Any:
        """Invoke a deployed function synchronously and return its (JSON round-tripped) result.

        The event is JSON round-tripped too, as Lambda would. Raises :class:`FunctionError` when the
        handler raised. Must run inside the ``mock_aws`` the function was deployed into. ``request_id``
        (default: a new one) lets a caller replay Lambda's retry of an asynchronous invocation, which
        keeps the failed attempt's request id.
        """
        cfg = _config_of(self._function(function_name))
        result, error = self._run(cfg, json.loads(json.dumps(event)), "Local", request_id)
        if error is not None:
            cause = error.pop("_exception")
            raise FunctionError(error, cause)
        return result

    def invoke_async(self, function_name: str, event: Any, *, invocation_type: str = "Event") -> Future[Any]:
        """Invoke a function on a worker thread (Lambda's asynchronous invocation); errors are recorded."""
        cfg = _config_of(self._function(function_name))
        return self._submit(cfg, json.loads(json.dumps(event)), invocation_type)

    def _submit(self, cfg: _FunctionConfig, event: Any, invocation_type: str) -> Future[Any]:
        future = self._executor.submit(self._run, cfg, event, invocation_type)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until no asynchronous invocation is running; True when idle within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            for fut in pending:
                try:
                    fut.result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception:
                    break

    def idle(self) -> bool:
        """True when no asynchronous invocation is queued or running."""
        with self._lock:
            return not self._pending

    def errors(self) -> list[Invocation]:
        """Invocations whose handler raised."""
        with self._lock:
            return [i for i in self.invocations if i.error_type is not None]

    # -- the moto hook -----------------------------------------------------------------------------

    def moto_invoke(self, fn: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        """Replacement for ``LambdaFunction.invoke``: same inputs, same outputs as moto's Docker path."""
        if isinstance(body, bytes):
            body = body.decode("utf-8")
        if isinstance(body, str):
            event = json.loads(body) if body.strip() else {}
        else:
            event = body if body is not None else {}
        headers = {str(k).lower(): v for k, v in dict(request_headers or {}).items()}
        # moto's own service deliveries (S3 and SNS notifications) call with no headers at all; on AWS
        # those services invoke asynchronously, so a handler's failure never fails the PutObject.
        default_type = "RequestResponse" if request_headers else "Event"
        invocation_type = headers.get("x-amz-invocation-type", default_type)
        cfg = _config_of(fn)
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":
            # Lambda queues asynchronous invocations and returns 202 at once.
            self._submit(cfg, event, "Event")
            return b""
        result, error = self._run(cfg, event, invocation_type)
        if error is not None:
            error.pop("_exception", None)
            # "Unhandled" is what Lambda reports for an exception escaping the handler.
            response_headers["x-amz-function-error"] = "Unhandled"
            payload = json.dumps(error).encode("utf-8")
        else:
            payload = json.dumps(result).encode("utf-8")
        if headers.get("x-amz-log-type") == "Tail":
            response_headers["x-amz-log-result"] = base64.b64encode(b"").decode()
        return payload

    def shutdown(self) -> None:
        """Stop accepting asynchronous invocations and wait for the running ones."""
        self._executor.shutdown(wait=True)


_active: LambdaRuntime | None = None


def active_runtime() -> LambdaRuntime:
    """The runtime installed by the innermost :func:`installed` (RuntimeError when none is)."""
    if _active is None:
        raise RuntimeError("no in-process Lambda runtime is installed (use sandbox.lambdas.installed)")
    return _active


def invoke_local(function_name: str, event: Any) -> Any:
    """Invoke ``function_name`` through the installed runtime (see LambdaRuntime.invoke_local)."""
    return active_runtime().invoke_local(function_name, event)


@contextmanager
def installed(
    deployment: Deployment | None = None,
    *,
    code_dirs: Iterable[Path | str] = (FUNCTIONS_DIR,),
    check_handlers: bool = True,
) -> Iterator[LambdaRuntime]:
    """Patch moto so every Lambda invoke runs the configured handler in-process.

    ``code_dirs`` go to the front of ``sys.path`` (the Lambda code root is the archive root). With a
    ``deployment`` and ``check_handlers``, every deployed handler is imported up front, so a bad
    handler string fails here rather than in the middle of a job. On exit, waits for asynchronous
    invocations and restores moto and ``os.environ``.
    """
    from moto.awslambda.models import LambdaFunction
    from moto.core.models import default_user_config

    if default_user_config.get("lambda", {}).get("use_docker", True) is False:
        # moto's "simple" Lambda backend answers canned payloads and never reaches LambdaFunction.invoke.
        raise RuntimeError('the sandbox runtime needs mock_aws without {"lambda": {"use_docker": False}}')
    global _active
    runtime = LambdaRuntime([Path(d) for d in code_dirs])
    added = [str(d) for d in runtime.code_dirs if str(d) not in sys.path]
    for d in reversed(added):
        sys.path.insert(0, d)
    original = LambdaFunction.invoke

    def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        return runtime.moto_invoke(self, body, request_headers, response_headers)

    enable_env_overlay()
    previous = _active
    LambdaFunction.invoke = invoke  # type: ignore[method-assign,assignment]
    _active = runtime
    try:
        if deployment is not None and check_handlers:
            for info in deployment.functions.values():
                runtime._handler(info.handler)
        yield runtime
    finally:
        runtime.wait_idle()
        runtime.shutdown()
        LambdaFunction.invoke = original  # type: ignore[method-assign]
        _active = previous
        disable_env_overlay()
        for d in added:
            if d in sys.path:
                sys.path.remove(d)


__all__ = [
    "FUNCTIONS_DIR",
    "FunctionError",
    "Invocation",
    "LambdaContext",
    "LambdaRuntime",
    "active_runtime",
    "current_function_name",
    "disable_env_overlay",
    "enable_env_overlay",
    "env_overlay",
    "error_payload",
    "installed",
    "invoke_local",
]
