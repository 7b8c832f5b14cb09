"""IAM from real calls: every boto3 call each function makes in real end-to-end runs (options sfn and
sqs) is allowed by that function's role as the program declares it, and each role allows nothing the
code never calls, except the justified :data:`EXCEPTIONS`.

Runs of option sfn (each a fresh deployment, calls recorded with ``SandboxOptions(record_calls=True)``):

- ``inline``: the sample job (sample/index-fields.json, maxDocumentBytes 65536; its deletes.txt deletes
  ids), every trigger delivered twice (duplicate executions end at AcquireLock), the same job again
  (re-run: unchanged documents skipped), a deletes-only job, a job whose manifest is rejected (its report
  is written without a plan), then AggregateFailures run again with the
  input of its first attempt, as the state machine's Retry would after an attempt that archived the
  manifest and then failed (the manifest is gone: S3 must answer NoSuchKey, not AccessDenied), and
  LoadManifest for a late duplicate of that trigger (NoSuchKey again).
- ``s3``: documentMode s3 (Kendra fetches S3Path documents with the access role the function passes).
- ``data-source``: kendraDataSourceId set; then a job whose execution is stopped at once: the
  EventBridge rule for abandoned executions runs finish_abandoned on the status-change event (it writes
  the report, notifies and releases the lock); its first attempt dies after archiving the manifest and
  Lambda's retry (same request id) must get NoSuchKey for it.

Runs of option sqs. The event source mappings' own calls (ReceiveMessage, DeleteMessageBatch and the
GetQueueAttributes of mapping creation) are made by Lambda with the function's role: the sandbox's
mapping records them as the function's (``AwsCall.via == "event source mapping"``).

- ``inline``: the sample job, every manifest event delivered twice, the same job again, a deletes-only
  job, a rejected manifest, then two jobs of one source (the second waits for the first) whose first
  summary request and whose restart of the waiting job are lost: the watchdog (run by the sandbox when
  the pipeline goes quiet) requests the summary and restarts the waiting job.
- ``dead-letter``: every Kendra write crashes its worker after Kendra accepted it, so a put part and a
  delete part exhaust their receives and the dead-letter handler settles them from both DLQs by asking
  Kendra what it holds (BatchGetDocumentStatus) and records what was put in the documents table. Its
  summary request is then run here: the first attempt dies after archiving the manifest, and Lambda's
  retry (same request id) must get NoSuchKey for it.
- ``s3``: documentMode s3 (put_worker passes the Kendra access role).
- ``data-source``: kendraDataSourceId set: the producer starts the job's sync job, the summarizer stops it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
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
    charge_to,
    function_documents,
    grants,
    iam_requests,
    recording,
)
from sandbox.lambdas import FunctionError, current_function_name
from sandbox.run import REGION, Sandbox, SandboxOptions, SimulatedCrash
from tests.sandbox.conftest import assert_conserved, make_job, rows

SAMPLE = Path(__file__).resolve().parents[2] / "sample"
FIELDS = json.loads((SAMPLE / "index-fields.json").read_text())
HANDLERS = {
    "sfn": ("load_manifest", "acquire_lock", "list_batches", "process_batch", "verify_indexing",
            "aggregate_failures", "release_lock", "finish_abandoned"),
    "sqs": ("producer", "put_worker", "del_worker", "dead_letter", "summarizer", "watchdog"),
}
ESM = "event source mapping"

#: (handler or "*", statement Sid, action) granted but never exercised by a recorded call, and why.
EXCEPTIONS: dict[tuple[str, str, str], str] = {
    **{("*", "WriteOwnLogs", a): "the Lambda service writes the function's own logs with its role; no code call"
       for a in ("logs:CreateLogStream", "logs:PutLogEvents")},
    **{("*", "XRayTracing", a): "the X-Ray SDK/daemon sends segments and sampling calls (tracing is active); X-Ray"
       " accepts only Resource '*'; tracing is disabled in the sandbox"
       for a in ("xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                 "xray:GetSamplingTargets")},
    **{("*", "UseStackKey", a): "S3, DynamoDB, SNS and SQS call KMS on the caller's behalf (the stack key with"
       " encryption=kms; the sqs summarizer publishes to the topic, encrypted with its own key in every"
       " configuration); never a direct call (and moto makes none)" for a in ("kms:Decrypt", "kms:GenerateDataKey")},
    ("aggregate_failures", "DocumentsTable", "dynamodb:BatchWriteItem"): "forgets documents whose"
    " verification was cut short by a crash of VerifyIndexing (IndexingUnconfirmed, sent again next time): no"
    " end-to-end run crashes that step; tests/functions/test_finish.py::"
    "test_verification_cut_short_reports_unconfirmed_and_forgets_them covers the path",
    ("process_batch", "LockTable", "dynamodb:PutItem"): "records that Kendra found the index full (later parts"
    " then send nothing); none of these runs fills the index: tests/sandbox/test_e2e_sfn.py::"
    "test_a_full_index_stops_the_job_sending_and_reports_what_was_not_sent covers the path",
    **{("process_batch", sid, a): "a retried Map item skips the parts an earlier attempt saved, and the Map's"
       " Catch settles unfinished parts from what Kendra and the ledger hold: none of these runs crashes a"
       " ProcessBatch; tests/sandbox/test_e2e_sfn.py::test_crash_after_kendra_and_faults_still_account_for_everything"
       " covers both paths" for sid, a in (("DocumentsTable", "dynamodb:BatchGetItem"),
                                          ("KendraIndex", "kendra:BatchGetDocumentStatus"),
                                          ("ReportsBucket", "s3:ListBucket"), ("ReportsObjects", "s3:GetObject"))},
    ("put_worker", "KendraIndex", "kendra:BatchGetDocumentStatus"): "asks a full index which documents of a"
    " redelivered part it already holds; none of these runs fills the index: tests/sandbox/test_e2e_sqs.py::"
    "test_a_full_index_stops_the_job_sending_and_reports_what_was_not_sent covers the path",
    ("watchdog", "LockTable", "dynamodb:DeleteItem"): "releases the source lock of a finished run only when its"
    " summarizer died between finishing the run and releasing the lock: no end-to-end run can kill a handler"
    " mid-call; tests/functions/test_fanin.py::test_watchdog_summarizes_complete_jobs_and_starts_waiting_ones"
    " covers the path",
}


@dataclass(frozen=True)
class Run:
    option: str
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


def _options(duplicate_events: int = 1, indexing_delay_seconds: float = 0.0, *, option: str = "sfn",
             crash_after_kendra: float = 0.0, wait_scale: float = 0.001, **config: Any) -> SandboxOptions:
    return SandboxOptions(option=option, timeout_seconds=60, index_fields=FIELDS, seed=1, record_calls=True,
                          duplicate_events=duplicate_events, indexing_delay_seconds=indexing_delay_seconds,
                          crash_after_kendra=crash_after_kendra, wait_scale=wait_scale,
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


def _execution_input(execution_arn: str) -> str:
    import boto3

    return boto3.client("stepfunctions", region_name=REGION).describe_execution(executionArn=execution_arn)["input"]


def _function_name(box: Sandbox, handler: str) -> str:
    return box.deployment.function_by_handler(handler).name


def _freeze(name: str, box: Sandbox, *, crashes: bool = False) -> Run:
    """The run's calls; no handler failed, except (``crashes``) the ones the sandbox crashed on purpose."""
    errors = box.runtime.errors()
    if crashes:
        errors = [e for e in errors if "SimulatedCrash" not in f"{e.error_type}: {e.error_message}"]
    assert not errors, errors
    return Run(box.options.option, name, box.deployment, tuple(box.aws_calls), tuple(box.aws_calls.unattributed))


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
        # A late duplicate of that trigger, after its job archived the manifest: NoSuchKey, not AccessDenied.
        late = box.runtime.invoke_local(_function_name(box, "load_manifest"),
                                        _step_input(box, execution, "LoadManifest"))
        assert late["job"]["error"], late
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
        abandoned = _function_name(box, "finish_abandoned")
        # Its first attempt dies after archiving the manifest, before the report is marked written; the
        # retry (Lambda retries an async event) finds the manifest gone: NoSuchKey, not AccessDenied.
        with _crashes_once("s3", "PutObject", "/finished.json") as crashed:
            while not any(i.function_name == abandoned and i.invocation_type == "Event"
                          for i in box.runtime.invocations):
                assert time.monotonic() < deadline, "finish_abandoned never ran for the stopped execution"
                time.sleep(0.05)
            box.runtime.wait_idle()
        (first,) = [i for i in box.runtime.invocations if i.function_name == abandoned]
        assert crashed and first.error_type == "SimulatedCrash"
        event = {"source": "aws.states", "detail-type": "Step Functions Execution Status Change",
                 "detail": {"executionArn": execution, "status": "ABORTED", "input": _execution_input(execution)}}
        assert box.runtime.invoke_local(abandoned, event, request_id=first.request_id)["reported"] is True
        return _freeze("data-source", box, crashes=True)


# -- option sqs ---------------------------------------------------------------------------------------


def _docs(n: int, prefix: str) -> dict[str, tuple[str, dict[str, str]]]:
    return {f"{prefix}-{i}.txt": (f"body {i}", {"Title": f"{prefix} {i}"}) for i in range(n)}


@contextmanager
def _losing_invokes(box: Sandbox, losses: dict[str, set[str]]) -> Iterator[list[tuple[str, str, Any]]]:
    """Lose the first asynchronous invoke of each handler in ``losses`` made by one of the handlers it maps
    to (Lambda retries an async event only twice); yields the (caller, callee, event) lost so far."""
    runtime, original = box.runtime, box.runtime._submit
    lost: list[tuple[str, str, Any]] = []
    lock = threading.Lock()

    def handler(name: str | None) -> str:
        return box.deployment.functions[name].handler.rpartition(".")[0] if name else ""

    def submit(cfg: Any, event: Any, invocation_type: str) -> Future[Any]:
        # moto runs the invoke on the caller's thread: the running function is the caller.
        caller, callee = handler(current_function_name()), handler(cfg.name)
        with lock:
            drop = caller in losses.get(callee, ()) and callee not in {c for _, c, _ in lost}
            if drop:
                lost.append((caller, callee, event))
        if not drop:
            return original(cfg, event, invocation_type)
        gone: Future[Any] = Future()
        gone.set_result((None, None))
        return gone

    runtime._submit = submit  # type: ignore[method-assign]
    try:
        yield lost
    finally:
        del runtime._submit  # back to the class's method


def _sqs_inline_run(tmp: Path) -> Run:
    _cold_containers()
    with Sandbox(_options(duplicate_events=2, option="sqs")) as box:
        jobs = []
        for folder in (SAMPLE / "job", SAMPLE / "job", make_job(tmp, "sqs-deletes-only", {}, deletes=["emp-101", "x"]),
                       make_job(tmp, "sqs-bad-manifest", {}, schemaVersion=99)):
            jobs.append(box.submit(folder))
            box.wait([jobs[-1]])
        assert [box.report(j)[0]["status"] == "FAILED" for j in jobs] == [False, False, False, True]
        assert box.watchdog_runs == 0
        # Two jobs of one source: the second waits. The first one's summary request is lost (made by the
        # last worker, or by the producer when the workers finished before it sealed), then the summarizer's
        # restart of the waiting job: the watchdog must do both (two quiet spells).
        with _losing_invokes(box, {"summarizer": {"put_worker", "producer"}, "producer": {"summarizer"}}) as lost:
            pair = [box.submit(make_job(tmp, f"sqs-src-{n}", _docs(3, f"s{n}"), source="shared")) for n in (1, 2)]
            box.wait(pair)
        assert {callee for _, callee, _ in lost} == {"summarizer", "producer"} and box.watchdog_runs == 2
        for job in pair:
            summary, failures = box.report(job)
            assert_conserved(summary, failures)
            assert summary["status"] == "SUCCEEDED", summary
        return _freeze("inline", box)


@contextmanager
def _crashes_once(service: str, operation: str, key_suffix: str | None = None) -> Iterator[list[str]]:
    """The next ``operation`` call of the function code (on ``key_suffix`` for S3) kills its handler."""
    from kendra_ingest import aws

    crashed: list[str] = []

    def crash(params: dict[str, Any], **kwargs: Any) -> None:
        if not crashed and (key_suffix is None or str(params.get("Key", "")).endswith(key_suffix)):
            crashed.append(operation)
            raise SimulatedCrash(f"sandbox: the handler died at {operation}")

    event = f"before-parameter-build.{service}.{operation}"
    client = aws.client(service)  # the function code's shared client
    client.meta.events.register_first(event, crash, unique_id="iam-test-crash")
    try:
        yield crashed
    finally:
        client.meta.events.unregister(event, unique_id="iam-test-crash")


def _sqs_dead_letter_run(tmp: Path) -> Run:
    _cold_containers()
    # Every Kendra write "crashes" its worker after Kendra accepted it: each part exhausts its receives.
    with Sandbox(_options(option="sqs", crash_after_kendra=1.0, wait_scale=0.00005)) as box:
        summarizer = _function_name(box, "summarizer")
        # The dead-letter handler's summary request is taken over here: its first attempt dies after
        # archiving the manifest; Lambda's retry (same request id, so it re-enters its own claim) finds the
        # manifest gone: S3 must answer NoSuchKey, not AccessDenied.
        with _losing_invokes(box, {"summarizer": {"dead_letter"}}) as lost:
            job = box.submit(make_job(tmp, "sqs-dlq", _docs(3, "dl"), deletes=["gone-1"]))
            deadline = time.monotonic() + 30
            while not lost:
                assert time.monotonic() < deadline, "the dead-letter handler never requested the summary"
                time.sleep(0.02)
        request = lost[0][2]
        # It dies at its SNS Publish: after it archived the manifest, before it finished the run.
        with _crashes_once("sns", "Publish") as crashed, pytest.raises(FunctionError, match="SimulatedCrash"):
            box.runtime.invoke_local(summarizer, request, request_id="retried-1")
        assert crashed
        assert box.runtime.invoke_local(summarizer, request, request_id="retried-1")["summarized"] is True
        box.wait([job])
        summary, failures = box.report(job)
        assert_conserved(summary, failures)
        # Kendra accepted every part before its worker died: the dead-letter handler settles them from
        # what Kendra holds (BatchGetDocumentStatus), so nothing is misreported as DeadLettered.
        assert rows(failures) == [], rows(failures)
        assert summary["documents"]["put"] == 3 and summary["deletes"]["deleted"] == 1
        return _freeze("dead-letter", box, crashes=True)


def _sqs_s3_run() -> Run:
    _cold_containers()
    with Sandbox(_options(option="sqs", documentMode="s3")) as box:
        box.wait([box.submit(SAMPLE / "job")])
        return _freeze("s3", box)


def _sqs_data_source_run(tmp: Path) -> Run:
    _cold_containers()
    with Sandbox(_options(option="sqs", kendraDataSourceId="ds-1")) as box:
        job = box.submit(make_job(tmp, "sqs-ds-1", _docs(3, "ds"), deletes=["gone-1"]))
        box.wait([job])
        assert_conserved(*box.report(job))
        return _freeze("data-source", box)


@pytest.fixture(scope="module")
def sfn_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Run]:
    tmp = tmp_path_factory.mktemp("iam")
    return [_inline_run(tmp), _s3_run(), _data_source_run(tmp)]


@pytest.fixture(scope="module")
def sqs_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Run]:
    tmp = tmp_path_factory.mktemp("iam-sqs")
    return [_sqs_inline_run(tmp), _sqs_dead_letter_run(tmp), _sqs_s3_run(), _sqs_data_source_run(tmp)]


@pytest.fixture(scope="module", params=["sfn", "sqs"])
def runs(request: pytest.FixtureRequest) -> list[Run]:
    return request.getfixturevalue(f"{request.param}_runs")


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
    assert {run.handler(c) for run in runs for c in run.calls} == set(HANDLERS[runs[0].option])


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


def test_conditional_grants_appear_only_in_their_configuration(sfn_runs: list[Run]) -> None:
    runs = sfn_runs
    by_run = {run.name: {(h, g.sid, g.action) for h, gs in _granted(run).items() for g in gs} for run in runs}
    pass_role = ("process_batch", "PassKendraAccessRole", "iam:PassRole")
    sync = ("list_batches", "KendraDataSourceSync", "kendra:StartDataSourceSyncJob")
    assert [name for name, keys in by_run.items() if pass_role in keys] == ["s3"]
    assert [name for name, keys in by_run.items() if sync in keys] == ["data-source"]
    # The S3Path documents were passed the access role, by process_batch only.
    passed = {(runs[1].handler(c), r.action) for c, r in _requests(runs[1]) if r.action == "iam:PassRole"}
    assert passed == {("process_batch", "iam:PassRole")}


def test_the_error_paths_the_runs_claim_to_cover_were_hit(sfn_runs: list[Run]) -> None:
    """Guards the scenarios above: if one stops happening, the coverage test would silently weaken."""
    inline, _, data_source = sfn_runs
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
    abandoned = {c.operation for c in data_source.calls if data_source.handler(c) == "finish_abandoned"}
    assert {"GetItem", "DeleteItem", "Publish"} <= abandoned  # the run record, the lock, the notification


def test_sqs_conditional_grants_and_the_paths_the_runs_claim_to_cover(sqs_runs: list[Run]) -> None:
    """Guards the sqs scenarios: if one stops happening, the coverage test would silently weaken."""
    inline, dead, s3, data_source = sqs_runs
    pass_role = ("put_worker", "PassKendraAccessRole", "iam:PassRole")
    start, stop = (("producer", "KendraDataSourceSync", "kendra:StartDataSourceSyncJob"),
                   ("summarizer", "KendraDataSourceSync", "kendra:StopDataSourceSyncJob"))
    by_run = {run.name: {(h, g.sid, g.action) for h, gs in _granted(run).items() for g in gs} for run in sqs_runs}
    assert [name for name, keys in by_run.items() if pass_role in keys] == ["s3"]
    assert [name for name, keys in by_run.items() if {start, stop} <= keys] == ["data-source"]
    assert not [name for name, keys in by_run.items() if {start, stop} & keys and name != "data-source"]
    passed = {(s3.handler(c), r.action) for c, r in _requests(s3) if r.action == "iam:PassRole"}
    assert passed == {("put_worker", "iam:PassRole")}
    synced = {(data_source.handler(c), c.operation) for c in data_source.calls if "DataSourceSyncJob" in c.operation}
    assert synced == {("producer", "StartDataSourceSyncJob"), ("summarizer", "StopDataSourceSyncJob")}
    # Lambda's own calls for the mappings are recorded as the consuming function's, and only those.
    outputs = inline.deployment.outputs
    mapped = {"put_worker": {outputs["put_queue_url"]}, "del_worker": {outputs["delete_queue_url"]},
              "dead_letter": {outputs["put_dlq_url"], outputs["delete_dlq_url"]}}
    for run in sqs_runs:
        via = [c for c in run.calls if c.via is not None]
        assert {c.via for c in via} == {ESM} and {run.handler(c) for c in via} == set(mapped), run.name
        assert all(c.target["queue_url"] in mapped[run.handler(c)] for c in via), run.name
        assert {c.operation for c in via} == {"ReceiveMessage", "DeleteMessageBatch", "GetQueueAttributes"}, run.name
    # Both dead-letter queues delivered a part to the dead-letter handler, and it acknowledged them.
    settled = {c.target["queue_url"] for c in dead.calls if c.via and c.operation == "DeleteMessageBatch"
               and dead.handler(c) == "dead_letter"}
    assert settled == mapped["dead_letter"]
    # The duplicate manifest event found its run claimed; the waiting job was restarted by the summarizer
    # (lost) and then by the watchdog, which also requested the lost summary.
    errors = {(inline.handler(c), c.operation, c.error) for c in inline.calls if c.error}
    assert ("producer", "PutItem", "ConditionalCheckFailedException") in errors
    names = outputs["function_names"]
    invoked = {(inline.handler(c), c.target["function"]) for c in inline.calls if c.operation == "Invoke"}
    assert {("watchdog", names["summarizer"]), ("watchdog", names["producer"]), ("summarizer", names["producer"]),
            ("producer", names["summarizer"])} <= invoked
    # The retried summary found the manifest it had archived gone.
    gone = {(c.target["bucket"], c.target["key"].rpartition("/")[2]) for c in dead.calls
            if dead.handler(c) == "summarizer" and c.error == "NoSuchKey"}
    assert (outputs["ingestion_bucket"], "manifest.json") in gone
    # A retried producer reads back its committed plan: job.json is missing on the first attempt
    # (NoSuchKey, which needs s3:ListBucket on the reports bucket).
    missing = {c.target["bucket"] for c in inline.calls
               if inline.handler(c) == "producer" and c.operation == "GetObject" and c.error == "NoSuchKey"}
    # (A duplicate trigger delivered after its job archived the manifest also reads NoSuchKey, on the
    # ingestion bucket, depending on timing.)
    assert outputs["reports_bucket"] in missing
    assert missing <= {outputs["reports_bucket"], outputs["ingestion_bucket"]}


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
    queue = {"queue_url": "https://sqs.us-east-1.amazonaws.com/1/q.fifo", "queue_name": None}
    assert [r.action for op in ("ReceiveMessage", "DeleteMessageBatch", "GetQueueAttributes")
            for r in iam_requests(_call("sqs", op, queue))] == [
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    assert iam_requests(_call("dynamodb", "Scan", {"items": (("Scan", "t"),)})) == (
        IamRequest("dynamodb:Scan", table + "t"),)
    sync = _call("kendra", "StartDataSourceSyncJob", {"index_id": "i", "data_source_id": "ds"})
    index = "arn:aws:kendra:us-east-1:123456789012:index/i"
    assert iam_requests(sync) == (IamRequest("kendra:StartDataSourceSyncJob", index),
                                  IamRequest("kendra:StartDataSourceSyncJob", f"{index}/data-source/ds"))
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


def test_charge_to_records_the_calls_a_service_makes_with_a_functions_role() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        url = boto3.client("sqs", region_name=REGION).create_queue(QueueName="q")["QueueUrl"]
        with recording() as calls:
            charged = charge_to(boto3.client("sqs", region_name=REGION), "fn-1", via=ESM)
            charged.receive_message(QueueUrl=url)
            charged.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=url)  # the sandbox's own: not charged
        charged.receive_message(QueueUrl=url)  # after recording: not recorded
        charge_to(boto3.client("sqs", region_name=REGION), "fn-1", via=ESM).receive_message(QueueUrl=url)
    assert [(c.function, c.operation, c.via, c.resource) for c in calls] == [
        ("fn-1", "ReceiveMessage", ESM, url), ("fn-1", "GetQueueAttributes", ESM, url)]
    assert calls.unattributed == []
    assert [r.action for c in calls for r in iam_requests(c)] == ["sqs:ReceiveMessage", "sqs:GetQueueAttributes"]
