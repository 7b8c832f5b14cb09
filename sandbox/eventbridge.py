"""EventBridge target delivery for the sandbox (moto 5.2.x defects fixed here).

moto 5.2.x's ``Rule.send_to_targets`` raises ``NotImplementedError`` for Step Functions and Lambda
targets, and the S3 → EventBridge path wraps it in a bare ``except`` so the event silently vanishes
(and every later target of the rule is skipped). :func:`installed` wraps ``moto.events.models.Rule.send_to_targets``:

- a state machine target starts an execution (``Input`` / ``InputPath`` / ``InputTransformer``
  applied, a unique execution name, as EventBridge does);
- a Lambda target is invoked asynchronously through the in-process runtime (:mod:`sandbox.lambdas`);
- any other target keeps moto's behaviour, one target at a time so one failure cannot skip the rest;
- every failure is recorded in :attr:`EventDelivery.errors` (never swallowed);
- each event can be delivered ``duplicate_events`` times (``--duplicate-events``: EventBridge
  delivers at least once).

Two further moto deviations are corrected for every target: a rule that is not ``ENABLED`` receives
nothing, and a schedule-only rule (no event pattern) matches no event (moto treats an empty pattern as
"match everything", so a scheduled rule would fire on every S3 upload). Every S3 event gets its own id
and S3 sequencer (moto gives all of them the same ones, so a re-upload of a manifest to the same key
looked like a repeated delivery of the first upload and started no run).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# moto's S3 → EventBridge events all carry this one constant id (moto.events.utils._BASE_EVENT_MESSAGE).
_MOTO_CONSTANT_EVENT_ID = "17793124-05d4-b198-2fde-7ededc63b103"
# ... and this one constant S3 sequencer (moto.s3.notifications), which on AWS differs for every upload.
_MOTO_CONSTANT_SEQUENCER = "617f08299329d189"
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


@dataclass(frozen=True)
class DeliveryError:
    """A target delivery that failed."""

    rule: str
    target_id: str
    target_arn: str
    event_id: str
    error: str


@dataclass(frozen=True)
class Delivery:
    """A delivery made (or attempted) by the wrapper."""

    rule: str
    target_id: str
    target_arn: str
    event_id: str
    execution_arn: str | None = None  # for state machine targets


@dataclass
class EventDelivery:
    """What the installed wrapper delivered; callers assert on :attr:`errors`."""

    duplicate_events: int = 1
    deliveries: list[Delivery] = field(default_factory=list)
    errors: list[DeliveryError] = field(default_factory=list)
    items: list[Delivery | DeliveryError] = field(default_factory=list)  # both, in the order they happened
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _record(self, item: Delivery | DeliveryError) -> None:
        with self._lock:
            self.items.append(item)
            if isinstance(item, DeliveryError):
                self.errors.append(item)
            else:
                self.deliveries.append(item)

    def executions(self) -> list[str]:
        """ARNs of the executions started, in order."""
        with self._lock:
            return [d.execution_arn for d in self.deliveries if d.execution_arn]


def _iso_time(value: Any) -> Any:
    # Real events carry ISO-8601 `time`; moto puts epoch floats there.
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def normalise_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge would deliver it: ISO time, and a real per-event id."""
    out = copy.deepcopy(event)
    out["time"] = _iso_time(out.get("time"))
    # Same event (across rules and duplicate deliveries) → same id and sequencer, as on AWS; another
    # upload (moto's `time` has microseconds) → others.
    digest = json.dumps([event.get("time"), event.get("resources"), event.get("detail")], sort_keys=True)
    if out.get("id") in (None, "", _MOTO_CONSTANT_EVENT_ID):
        out["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, digest))
    obj = (out.get("detail") or {}).get("object")
    if isinstance(obj, dict) and obj.get("sequencer") == _MOTO_CONSTANT_SEQUENCER:
        # The pipeline tells a re-upload of the same manifest (a new run) from a repeated delivery by it.
        obj["sequencer"] = hashlib.sha256(digest.encode()).hexdigest()[:18].upper()
    return out


def _json_path(path: str, event: dict[str, Any]) -> Any:
    from jsonpath_ng.ext import parse

    matches = parse(path).find(event)
    if not matches:
        return None
    return matches[0].value


def target_input(target: dict[str, Any], event: dict[str, Any]) -> str:
    """The text EventBridge sends to ``target`` for ``event`` (Input, InputPath, InputTransformer)."""
    if target.get("Input") is not None:
        return str(target["Input"])
    if target.get("InputPath"):
        return json.dumps(_json_path(target["InputPath"], event))
    transformer = target.get("InputTransformer")
    if transformer:
        values = {name: _json_path(path, event) for name, path in (transformer.get("InputPathsMap") or {}).items()}
        template = transformer.get("InputTemplate", "")

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "aws.events.event.json":
                return json.dumps(event)
            if name == "aws.events.rule-name":
                return str(values.get(name, ""))
            if name not in values:
                return match.group(0)
            value = values[name]
            if isinstance(value, str):
                # Placeholders of strings sit inside the template's quotes: insert the escaped text.
                return json.dumps(value)[1:-1]
            return json.dumps(value)

        return _PLACEHOLDER.sub(substitute, template)
    return json.dumps(event)


def _start_execution(state_machine_arn: str, text: str) -> str:
    from moto.stepfunctions.responses import get_backend

    account, region = state_machine_arn.split(":")[4], state_machine_arn.split(":")[3]
    execution = get_backend(account, region).start_execution(
        state_machine_arn=state_machine_arn,
        name=str(uuid.uuid4()),
        execution_input=text,
    )
    return execution.execution_arn


def _target_kind(arn: str) -> str:
    parts = arn.split(":")
    if len(parts) > 5 and parts[2] == "states" and parts[5] == "stateMachine":
        return "sfn"
    if len(parts) > 5 and parts[2] == "lambda" and parts[5] == "function":
        return "lambda"
    return "moto"


@contextmanager
def installed(*, duplicate_events: int = 1) -> Iterator[EventDelivery]:
    """Wrap ``Rule.send_to_targets`` for the duration of the block; yields the delivery record.

    Call inside ``mock_aws``. Lambda targets need :func:`sandbox.lambdas.installed` to be active
    when events arrive (otherwise the delivery is recorded as an error).
    """
    from moto.events.models import Rule

    if duplicate_events < 1:
        raise ValueError("duplicate_events must be ≥ 1")
    record = EventDelivery(duplicate_events=duplicate_events)
    original = Rule.send_to_targets

    def send_to_targets(self: Rule, original_event: dict[str, Any], transform_input: bool = True) -> None:
        if self.state != "ENABLED" or not self.event_pattern.get_pattern():
            return
        if not self.event_pattern.matches_event(original_event):
            return
        event = normalise_event(original_event)
        for target in list(self.targets):
            arn = target.get("Arn", "")
            kind = _target_kind(arn)
            for _ in range(duplicate_events):
                try:
                    if kind == "sfn":
                        execution_arn = _start_execution(arn, target_input(target, event))
                        record._record(Delivery(self.name, target["Id"], arn, event["id"], execution_arn))
                    elif kind == "lambda":
                        _deliver_to_lambda(record, self.name, target, event)
                    else:
                        single = copy.copy(self)
                        single.targets = [target]
                        original(single, copy.deepcopy(original_event), transform_input)
                        record._record(Delivery(self.name, target["Id"], arn, event["id"]))
                except Exception as exc:
                    record._record(
                        DeliveryError(self.name, target.get("Id", ""), arn, event["id"], f"{type(exc).__name__}: {exc}")
                    )

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
    try:
        yield record
    finally:
        Rule.send_to_targets = original  # type: ignore[method-assign]


def _deliver_to_lambda(record: EventDelivery, rule: str, target: dict[str, Any], event: dict[str, Any]) -> None:
    from sandbox import lambdas

    arn = target["Arn"]
    runtime = lambdas.active_runtime()
    payload = json.loads(target_input(target, event))
    future = runtime.invoke_async(arn, payload, invocation_type="Event")
    record._record(Delivery(rule, target["Id"], arn, event["id"]))

    def done(fut: Any) -> None:
        _, error = fut.result()
        if error is not None:
            record._record(
                DeliveryError(rule, target["Id"], arn, event["id"], f"{error['errorType']}: {error['errorMessage']}")
            )

    future.add_done_callback(done)


__all__ = ["Delivery", "DeliveryError", "EventDelivery", "installed", "normalise_event", "target_input"]
