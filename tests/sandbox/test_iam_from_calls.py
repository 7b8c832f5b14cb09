"""IAM from real calls: every boto3 call each function makes in real end-to-end runs (option sfn) is
allowed by that function's role as the program declares it, and each role allows nothing the code never
calls, except the justified :data:`EXCEPTIONS`.

Runs (each a fresh deployment, calls recorded with ``SandboxOptions(record_calls=True)``):

- ``inline``: the sample job (sample/index-fields.json, maxDocumentBytes 65536; its deletes.txt deletes
  ids), every trigger delivered twice (duplicate executions end at AcquireLock), the same job again
  (re-run: unchanged documents skipped), a deletes-only job, a job whose manifest is rejected (its report
  is written without a plan), then AggregateFailures run again with the
  input of its first attempt, as the state machine's Retry would after an attempt that archived the
  manifest and then failed (the manifest is gone: S3 must answer NoSuchKey, not AccessDenied).
- ``s3``: documentMode s3 (Kendra fetches S3Path documents with the access role the function passes).
- ``data-source``: kendraDataSourceId set; then a job whose execution is stopped at once: the
  EventBridge rule for abandoned executions runs release_lock on the status-change event.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.deploy import Deployment
from sandbox.iam_recorder import (
    AwsCall,
    Grant,
    IamRequest,
    UnmappedCall,
    allowed,
    function_documents,
    grants,
    iam_requests,
)
from sandbox.run import REGION, Sandbox, SandboxOptions
from tests.sandbox.conftest import make_job

SAMPLE = Path(__file__).resolve().parents[2] / "sample"
FIELDS = json.loads((SAMPLE / "index-fields.json").read_text())
HANDLERS = ("load_manifest", "acquire_lock", "list_batches", "process_batch", "verify_indexing",
            "aggregate_failures", "release_lock")

#: (handler or "*", statement Sid, action) granted but never exercised by a recorded call, and why.
EXCEPTIONS: dict[tuple[str, str, str], str] = {
    **{("*", "WriteOwnLogs", a): "the Lambda service writes the function's own logs with its role; no code call"
       for a in ("logs:CreateLogStream", "logs:PutLogEvents")},
    **{("*", "XRayTracing", a): "the X-Ray SDK/daemon sends segments and sampling calls (tracing is active); X-Ray"
       " accepts only Resource '*'; tracing is disabled in the sandbox"
       for a in ("xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                 "xray:GetSamplingTargets")},
    **{("*", "UseStackKey", a): "encryption=kms only: S3, DynamoDB, SNS and SQS call KMS on the caller's behalf;"
       " never a direct call (and moto makes none)" for a in ("kms:Decrypt", "kms:GenerateDataKey")},
}


@dataclass(frozen=True)
class Run:
    name: str
    deployment: Deployment
    calls: tuple[AwsCall, ...]
    unattributed: tuple[AwsCall, ...]

    def handler(self, call: AwsCall) -> str:
        assert call.function is not None
        return self.deployment.functions[call.function].handler.rpartition(".")[0]


def _cold_containers() -> None:
    """A fresh deployment starts cold: drop the handlers' per-container caches (``functools`` caches in
    ``kendra_ingest``, e.g. the DescribeIndex date fields), which the shared test process keeps otherwise."""
    for name, module in list(sys.modules.items()):
        if name == "kendra_ingest" or name.startswith("kendra_ingest."):
            for value in list(vars(module).values()):
                if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == name:
                    value.cache_clear()


def _options(duplicate_events: int = 1, indexing_delay_seconds: float = 0.0, **config: Any) -> SandboxOptions:
    return SandboxOptions(option="sfn", timeout_seconds=60, index_fields=FIELDS, seed=1, record_calls=True,
                          duplicate_events=duplicate_events, indexing_delay_seconds=indexing_delay_seconds,
                          config={"maxDocumentBytes": 65536, **config})


def _step_input(box: Sandbox, execution_arn: str, state: str) -> dict[str, Any]:
    import boto3

    sfn = boto3.client("stepfunctions", region_name=REGION)
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"] for e in events
               if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == state]
    if not entered:
        raise LookupError(f"{execution_arn} never entered {state}")
    return json.loads(entered[0]["input"])


def _function_name(box: Sandbox, handler: str) -> str:
    return box.deployment.function_by_handler(handler).name


def _freeze(name: str, box: Sandbox) -> Run:
    assert not box.runtime.errors(), box.runtime.errors()
    return Run(name, box.deployment, tuple(box.aws_calls), tuple(box.aws_calls.unattributed))


def _inline_run(tmp: Path) -> Run:
    _cold_containers()
    with Sandbox(_options(duplicate_events=2)) as box:
        jobs = []
        for folder in (SAMPLE / "job", SAMPLE / "job", make_job(tmp, "deletes-only", {}, deletes=["emp-101", "x"]),
                       make_job(tmp, "bad-manifest", {}, schemaVersion=99)):
            jobs.append(box.submit(folder))
            box.wait([jobs[-1]])
        assert [box.report(j)[0]["status"] == "FAILED" for j in jobs] == [False, False, False, True]
        # The first execution that got past AcquireLock (the duplicate one ends there).
        execution = next(e for e in box.delivery.executions() if _ran(box, e, "AggregateFailures"))
        retry = _step_input(box, execution, "AggregateFailures")
        box.runtime.invoke_local(_function_name(box, "aggregate_failures"), retry)
        return _freeze("inline", box)


def _ran(box: Sandbox, execution_arn: str, state: str) -> bool:
    try:
        _step_input(box, execution_arn, state)
    except LookupError:
        return False
    return True


def _s3_run() -> Run:
    _cold_containers()
    with Sandbox(_options(documentMode="s3")) as box:
        box.wait([box.submit(SAMPLE / "job")])
        return _freeze("s3", box)


def _data_source_run(tmp: Path) -> Run:
    import boto3

    _cold_containers()
    # Indexing takes a second, so the second job's execution is still waiting for it when it is stopped.
    with Sandbox(_options(indexing_delay_seconds=1.0, kendraDataSourceId="ds-1")) as box:
        docs = {f"d-{i}.txt": (f"body {i}", {"Title": f"d {i}"}) for i in range(3)}
        box.wait([box.submit(make_job(tmp, "ds-1", docs))])
        # A job whose execution is stopped midway: only the abandoned-execution rule releases its lock.
        box.submit(make_job(tmp, "stopped", {k.replace("d-", "e-"): v for k, v in docs.items()}))
        execution = box.delivery.executions()[-1]
        deadline = time.monotonic() + 30
        while not _ran(box, execution, "VerifyIndexing"):
            assert time.monotonic() < deadline, "the second job never reached VerifyIndexing"
            time.sleep(0.02)
        boto3.client("stepfunctions", region_name=REGION).stop_execution(executionArn=execution)
        release = _function_name(box, "release_lock")
        while not any(i.function_name == release and i.invocation_type == "Event" for i in box.runtime.invocations):
            assert time.monotonic() < deadline, "release_lock never ran for the stopped execution"
            time.sleep(0.05)
        box.runtime.wait_idle()
        return _freeze("data-source", box)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Run]:
    tmp = tmp_path_factory.mktemp("iam")
    return [_inline_run(tmp), _s3_run(), _data_source_run(tmp)]


def _requests(run: Run) -> Iterator[tuple[AwsCall, IamRequest]]:
    for call in run.calls:
        for request in iam_requests(call):
            yield call, request


def test_every_call_is_attributed_to_a_function_and_mapped_to_iam(runs: list[Run]) -> None:
    for run in runs:
        assert run.unattributed == (), run.name
        unmapped = []
        for call in run.calls:
            try:
                iam_requests(call)
            except UnmappedCall as exc:
                unmapped.append(str(exc))
        assert unmapped == [], run.name
    assert {runs[0].handler(c) for c in runs[0].calls} == set(HANDLERS)


def test_every_recorded_call_is_allowed_by_its_functions_role(runs: list[Run]) -> None:
    denied = set()
    for run in runs:
        documents = {name: function_documents(run.deployment, name) for name in run.deployment.functions}
        for call, request in _requests(run):
            assert call.function is not None
            if not allowed(documents[call.function], request.action, request.resource):
                denied.add((run.name, run.handler(call), call.operation, request.action, request.resource))
    assert not denied, "denied by the role:\n" + "\n".join(map(str, sorted(denied)))


def _granted(run: Run) -> dict[str, list[Grant]]:
    return {f.handler.rpartition(".")[0]: grants(function_documents(run.deployment, name))
            for name, f in run.deployment.functions.items()}


def _excepted(handler: str, grant: Grant) -> bool:
    return (handler, grant.sid, grant.action) in EXCEPTIONS or ("*", grant.sid, grant.action) in EXCEPTIONS


def test_every_granted_action_is_exercised_unless_a_listed_exception(runs: list[Run]) -> None:
    granted: set[tuple[str, str, str]] = set()
    exercised: set[tuple[str, str, str]] = set()
    for run in runs:
        by_handler = _granted(run)
        for handler, handler_grants in by_handler.items():
            granted |= {(handler, g.sid, g.action) for g in handler_grants}
        for call, request in _requests(run):
            handler = run.handler(call)
            exercised |= {(handler, g.sid, g.action) for g in by_handler[handler] if g.covers(request)}
    unexercised = granted - exercised
    unjustified = sorted(k for k in unexercised if k not in EXCEPTIONS and ("*", *k[1:]) not in EXCEPTIONS)
    assert not unjustified, "granted but never called (remove from the role or justify in EXCEPTIONS):\n" + "\n".join(
        map(str, unjustified))
    stale = sorted(k for k in exercised if k in EXCEPTIONS or ("*", *k[1:]) in EXCEPTIONS)
    assert not stale, "listed as never called, but called (remove the exception):\n" + "\n".join(map(str, stale))


def test_conditional_grants_appear_only_in_their_configuration(runs: list[Run]) -> None:
    by_run = {run.name: {(h, g.sid, g.action) for h, gs in _granted(run).items() for g in gs} for run in runs}
    pass_role = ("process_batch", "PassKendraAccessRole", "iam:PassRole")
    sync = ("list_batches", "KendraDataSourceSync", "kendra:StartDataSourceSyncJob")
    assert [name for name, keys in by_run.items() if pass_role in keys] == ["s3"]
    assert [name for name, keys in by_run.items() if sync in keys] == ["data-source"]
    # The S3Path documents were passed the access role, by process_batch only.
    passed = {(runs[1].handler(c), r.action) for c, r in _requests(runs[1]) if r.action == "iam:PassRole"}
    assert passed == {("process_batch", "iam:PassRole")}


def test_the_error_paths_the_runs_claim_to_cover_were_hit(runs: list[Run]) -> None:
    """Guards the scenarios above: if one stops happening, the coverage test would silently weaken."""
    inline, _, data_source = runs
    errors = defaultdict(set)
    for run in (inline, data_source):
        for call in run.calls:
            if call.error:
                errors[run.handler(call)].add((call.operation, call.error))
    assert ("PutItem", "ConditionalCheckFailedException") in errors["acquire_lock"]  # duplicate trigger
    missing = {c.target["bucket"] for c in inline.calls
               if inline.handler(c) == "aggregate_failures" and c.operation == "GetObject" and c.error == "NoSuchKey"}
    outputs = inline.deployment.outputs
    assert outputs["ingestion_bucket"] in missing  # the retry: the manifest was archived by the first attempt
    assert outputs["reports_bucket"] in missing  # the rejected manifest: no plan was ever written
    released = [c for c in data_source.calls if data_source.handler(c) == "release_lock"]
    assert "GetItem" in {c.operation for c in released}  # the run record read on the abandoned path


# -- the mapping and the evaluator on their own -----------------------------------------------------


def _call(service: str, operation: str, target: dict[str, Any], error: str | None = None) -> AwsCall:
    return AwsCall("fn", service, operation, target, error)


def test_mapping_of_calls_to_iam_requests() -> None:
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/"
    transact = _call("dynamodb", "TransactWriteItems", {"items": (("Update", "a"), ("ConditionCheck", "b"))})
    assert iam_requests(transact) == (IamRequest("dynamodb:UpdateItem", table + "a"),
                                      IamRequest("dynamodb:ConditionCheckItem", table + "b"))
    assert iam_requests(_call("s3", "ListObjectsV2", {"bucket": "b", "key": None})) == (
        IamRequest("s3:ListBucket", "arn:aws:s3:::b"),)
    assert iam_requests(_call("s3", "HeadObject", {"bucket": "b", "key": "k"}, "404")) == (
        IamRequest("s3:GetObject", "arn:aws:s3:::b/k"), IamRequest("s3:ListBucket", "arn:aws:s3:::b"))
    assert iam_requests(_call("sqs", "SendMessageBatch", {"queue_url": "https://sqs.us-east-1.amazonaws.com/1/q"})) == (
        IamRequest("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q"),)
    assert iam_requests(_call("lambda", "Invoke", {"function": "f", "qualifier": None})) == (
        IamRequest("lambda:InvokeFunction", "arn:aws:lambda:us-east-1:123456789012:function:f"),)
    put = _call("kendra", "BatchPutDocument", {"index_id": "i", "role_arn": "arn:aws:iam::1:role/r"})
    assert IamRequest("iam:PassRole", "arn:aws:iam::1:role/r") in iam_requests(put)
    with pytest.raises(UnmappedCall):
        iam_requests(_call("s3", "PutBucketPolicy", {"bucket": "b"}))


def test_policy_evaluation() -> None:
    document = {"Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]},
        {"Effect": "Allow", "Action": "S3:ListBucket", "Resource": "arn:aws:s3:::b"},
        {"Effect": "Deny", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/secret/*"]},
    ]}
    assert allowed([document], "s3:GetObject", "arn:aws:s3:::b/x/y")
    assert allowed([document], "s3:listbucket", "arn:aws:s3:::b")
    assert not allowed([document], "s3:ListBucket", "arn:aws:s3:::bb")
    assert not allowed([document], "s3:GetObject", "arn:aws:s3:::b/secret/k")
    assert not allowed([document], "s3:PutObject", "arn:aws:s3:::b/x")
    with pytest.raises(NotImplementedError):
        allowed([{"Statement": [{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}]}], "s3:GetObject", "x")
