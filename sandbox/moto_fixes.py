"""Small, named patches to moto 5.2.x internals that the sandbox needs (pinned: moto==5.2.5).

Each patch cites the FACTS.md entry ("moto 5.2.x as an embedded AWS") it answers. They patch
internals, so every one checks that its target still exists and fails loudly if moto moved it.

- :func:`cache_jsonpath_parsing` — "JSONPath is re-parsed on every use (caching the parse made
  executions ~6x faster)". jsonpath-ng's parser builds a PLY parser per call; parsed expressions are
  immutable and ``find``/``update_or_create`` do not mutate them, so sharing is safe across threads.
- :func:`scale_waits` — "Retry waits are real sleeps": ``Wait`` states and Retry ``IntervalSeconds``
  (with ``BackoffRate``/``MaxDelaySeconds`` already applied) sleep ``seconds * factor``. Sandbox only:
  factor 1.0 is AWS's timing; the sandbox uses e.g. 0.01 so a 30 s wait costs 0.3 s.
- :func:`emit_execution_status_events` — moto publishes no "Step Functions Execution Status Change"
  events; the pipeline's lock-release rule on FAILED/TIMED_OUT/ABORTED needs them.
- :func:`evaluate_bucket_policy_conditions` — moto ignores a policy's ``Bool`` condition and applies
  the statement anyway, so a TLS-only bucket policy (DESIGN §8) denies every request.

Usage, around (or inside) ``mock_aws``::

    with moto_fixes.applied(wait_scale=0.01) as fixes:
        ...
    assert not fixes.errors
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

_SFN = "moto.stepfunctions.parser.asl"


def _require(obj: Any, attr: str) -> Any:
    if not hasattr(obj, attr):
        raise RuntimeError(f"moto internals changed: {obj!r} has no {attr!r}; re-check sandbox/moto_fixes.py")
    return getattr(obj, attr)


@contextmanager
def cache_jsonpath_parsing(maxsize: int = 4096) -> Iterator[None]:
    """Memoise the JSONPath parse of moto's Step Functions engine (FACTS: ~6x faster executions)."""
    import importlib

    json_path = importlib.import_module(f"{_SFN}.utils.json_path")
    result_path = importlib.import_module(f"{_SFN}.component.common.path.result_path")
    originals = [(json_path, _require(json_path, "parse")), (result_path, _require(result_path, "parse"))]
    try:
        for module, parse in originals:
            module.parse = functools.lru_cache(maxsize=maxsize)(parse)
        yield
    finally:
        for module, parse in originals:
            module.parse = parse


@contextmanager
def scale_waits(factor: float) -> Iterator[None]:
    """Make ``Wait`` states and Retry intervals take ``factor`` of the declared time (FACTS: real sleeps)."""
    import importlib

    if factor < 0:
        raise ValueError("factor must be ≥ 0")
    wait_function = importlib.import_module(f"{_SFN}.component.state.wait.wait_function.wait_function")
    retrier = importlib.import_module(f"{_SFN}.component.common.retry.retrier_decl")
    wait_cls = _require(wait_function, "WaitFunction")
    original_wait = _require(wait_cls, "_wait_interval")
    original_time = _require(retrier, "time")

    def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        # moto's own loop compares whole seconds waited, so a fractional wait would loop forever;
        # wait on the same event (a stopped execution interrupts it) until the scaled time passed.
        deadline = time.monotonic() + max(0.0, float(wait_seconds)) * factor
        while env.is_running():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            env.program_state_event.wait(remaining)

    scaled_time = SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
    scaled_time.sleep = lambda seconds: time.sleep(max(0.0, float(seconds)) * factor)

    wait_cls._wait_interval = _wait_interval
    retrier.time = scaled_time  # retrier_decl calls time.sleep(interval) through its module global
    try:
        yield
    finally:
        wait_cls._wait_interval = original_wait
        retrier.time = original_time


@contextmanager
def emit_execution_status_events(errors: list[str]) -> Iterator[None]:
    """Publish "Step Functions Execution Status Change" events when an execution ends.

    moto's Step Functions engine emits no EventBridge events, so a rule on them (FACTS: "A Catch never
    runs on abort/timeout: release locks from an 'Execution Status Change' rule as well") would never
    fire. Only terminal statuses (SUCCEEDED, FAILED, TIMED_OUT, ABORTED) are published. A failure to
    publish is appended to ``errors`` (the execution itself is unaffected).
    """
    import importlib

    execution_module = importlib.import_module("moto.stepfunctions.parser.backend.execution")
    comm_cls = _require(execution_module, "BaseExecutionWorkerCommunication")
    original = _require(comm_cls, "terminated")

    def terminated(self: Any) -> None:
        original(self)
        try:
            _publish_status_change(self.execution)
        except Exception as exc:
            errors.append(f"status event for {self.execution.exec_arn}: {type(exc).__name__}: {exc}")

    comm_cls.terminated = terminated
    try:
        yield
    finally:
        comm_cls.terminated = original


def _millis(value: Any) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _publish_status_change(execution: Any) -> None:
    import json

    from moto.events.models import events_backends

    status = execution.exec_status.value if execution.exec_status is not None else None
    detail = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine.arn,
        "name": execution.name,
        "status": status,
        "startDate": _millis(execution.start_date),
        "stopDate": _millis(execution.stop_date),
        "input": json.dumps(execution.input_data),
        "output": json.dumps(execution.output) if status == "SUCCEEDED" else None,
        "error": execution.error,
        "cause": execution.cause,
    }
    events_backends[execution.account_id][execution.region_name].put_events(
        [
            {
                "Source": "aws.states",
                "DetailType": "Step Functions Execution Status Change",
                "Detail": json.dumps(detail),
                "Resources": [execution.exec_arn],
            }
        ]
    )


# The sandbox's clients all use moto's https endpoints: requests arrive over TLS.
_REQUEST_CONTEXT = {"aws:securetransport": True}


def _bool_condition_holds(block: dict[str, Any]) -> bool | None:
    """Evaluate a ``Bool`` condition block against the sandbox request context (None: unknown key)."""
    for key, expected in block.items():
        actual = _REQUEST_CONTEXT.get(key.lower())
        if actual is None:
            return None
        values = expected if isinstance(expected, list) else [expected]
        if not any(str(v).lower() == str(actual).lower() for v in values):
            return False
    return True


def _policy_for_request(policy: dict[str, Any]) -> dict[str, Any]:
    statements = policy.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    kept = []
    for statement in statements:
        condition = dict(statement.get("Condition") or {})
        if "Bool" in condition:
            holds = _bool_condition_holds(condition["Bool"])
            if holds is False:
                continue  # the statement does not apply to this request
            if holds is True:
                condition.pop("Bool")
                statement = (
                    {**statement, "Condition": condition}
                    if condition
                    else {k: v for k, v in statement.items() if k != "Condition"}
                )
        kept.append(statement)
    return {**policy, "Statement": kept}


@contextmanager
def evaluate_bucket_policy_conditions() -> Iterator[None]:
    """Evaluate ``Bool`` conditions (``aws:SecureTransport``) in S3 bucket policies.

    moto's policy engine ignores condition operators it does not know (only ``StringEquals`` is
    implemented) and then treats the statement as matching, so the program's TLS-only policy
    (Deny ``s3:*`` when ``aws:SecureTransport`` is ``false``) denies every request with a bare 403.
    """
    import json

    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    original = _require(FakeBucket, "get_permission")

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = _policy_for_request(json.loads(self.policy.decode()))
        if not policy["Statement"]:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission
    try:
        yield
    finally:
        FakeBucket.get_permission = original


@dataclass
class AppliedFixes:
    """What :func:`applied` installed; ``errors`` collects failures of the event-publishing fix."""

    errors: list[str] = field(default_factory=list)


@contextmanager
def applied(
    *,
    wait_scale: float = 1.0,
    jsonpath_cache: bool = True,
    execution_events: bool = True,
    bucket_policy_conditions: bool = True,
) -> Iterator[AppliedFixes]:
    """Apply the sandbox's moto fixes for the duration of the block."""
    fixes = AppliedFixes()
    with ExitStack() as stack:
        patches: list[Callable[[], Any]] = []
        if jsonpath_cache:
            patches.append(cache_jsonpath_parsing)
        if wait_scale != 1.0:
            patches.append(lambda: scale_waits(wait_scale))
        if execution_events:
            patches.append(lambda: emit_execution_status_events(fixes.errors))
        if bucket_policy_conditions:
            patches.append(evaluate_bucket_policy_conditions)
        for make in patches:
            stack.enter_context(make())
        yield fixes


__all__ = [
    "AppliedFixes",
    "applied",
    "cache_jsonpath_parsing",
    "emit_execution_status_events",
    "evaluate_bucket_policy_conditions",
    "scale_waits",
]
