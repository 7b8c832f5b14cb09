"""Run jobs through the real program deployed into the embedded AWS (docs/design.md, "The sandbox").

``Sandbox`` is the reusable core (tests drive it directly); :func:`run` is the CLI's ``run``.

Example::

    with Sandbox(SandboxOptions(option="sfn")) as box:
        job_id = box.submit(Path("sample"))
        box.wait()
        box.write_outputs(Path("out"), [job_id])
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGION = "us-east-1"
#: A syntactically valid index id (36 characters), as the config contract requires.
INDEX_ID = "00000000-0000-4000-8000-000000000000"
PREFIX_ROOT = "jobs"
#: How long nothing may run while a report is still missing before the run counts as broken.
QUIET_SECONDS = 5.0
#: Option sqs: how often a stalled wait runs the watchdog (its 5-minute schedule) before giving up.
WATCHDOG_RUNS_WHEN_STALLED = 2



class SandboxError(RuntimeError):
    """The pipeline itself broke, or a job did not finish in time."""


@dataclass(frozen=True, kw_only=True)
class SandboxOptions:
    option: str = "sfn"
    kendra_tps: float | None = None
    kendra_throttle: float = 0.0
    kendra_internal_error: float = 0.0
    index_fields: dict[str, str] | None = None
    duplicate_events: int = 1
    crash_after_kendra: float = 0.0
    seed: int | None = None
    quiet: bool = True
    timeout_seconds: float = 600.0
    #: Wait states and Retry intervals are multiplied by this (sandbox only: no real-time waiting).
    wait_scale: float = 0.001
    config: dict[str, Any] = field(default_factory=dict)
    indexing_delay_seconds: float = 0.0
    #: The most documents the emulated index holds (None: unlimited); beyond it puts fail as a full
    #: index's do (ServiceQuotaExceededException).
    index_capacity: int | None = None
    lambda_logs: bool = False
    #: Option sqs: probability that a message processed on its first receive is not deleted (a lost
    #: delete, or a visibility timeout that ran out first), so SQS delivers it a second time.
    sqs_redeliver: float = 0.0
    #: Every S3 request a function makes waits this long first (milliseconds), as on AWS.
    s3_latency_ms: float = 0.0
    #: Record every boto3 call each function makes (``Sandbox.aws_calls``; see sandbox/iam_recorder.py).
    record_calls: bool = False


class SimulatedCrash(RuntimeError):
    """``--crash-after-kendra``: the handler dies right after Kendra accepted its call."""


@contextmanager
def _fake_credentials() -> Iterator[None]:
    names = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
             "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Sandbox:
    """The deployed stack inside moto, with the Kendra emulator, running jobs on demand."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self._stack = ExitStack()
        self._submitted: list[str] = []
        self._before: dict[str, str | None] = {}
        self._uploads = 0
        #: Option sqs: the local event source mappings (None for option sfn).
        self.event_sources: Any = None
        #: Option sqs: watchdog runs that wait() made because the pipeline had gone quiet.
        self.watchdog_runs = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> Sandbox:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        from moto import mock_aws

        from sandbox import eventbridge, lambdas, moto_fixes, sqs
        from sandbox.deploy import deploy
        from sandbox.kendra_emulator import KendraEmulator

        o = self.options
        enter = self._stack.enter_context
        enter(_fake_credentials())
        enter(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        import boto3

        self.s3 = boto3.client("s3", region_name=REGION)
        self.s3._sandbox_own = True  # the emulator reads S3Path documents with it: not a function's request
        self.emulator = KendraEmulator(
            # A --config kendraIndexId names the emulated index too, or every call would miss it.
            index_id=str(o.config.get("kendraIndexId", INDEX_ID)), index_fields=o.index_fields, tps=o.kendra_tps,
            throttle_probability=o.kendra_throttle, internal_error_probability=o.kendra_internal_error,
            seed=o.seed, indexing_delay_seconds=o.indexing_delay_seconds, s3_reader=self._read_s3,
            index_capacity=o.index_capacity,
        )
        enter(self.emulator.installed())
        self.s3_reads: list[str] = []
        enter(_recording_s3_reads(self.s3_reads))
        if o.crash_after_kendra > 0:
            enter(_crash_after_kendra(o.crash_after_kendra, o.seed))
        from sandbox.iam_recorder import RecordedCalls, recording

        self.aws_calls: RecordedCalls = enter(recording()) if o.record_calls else RecordedCalls()
        enter(moto_fixes.applied(wait_scale=o.wait_scale))
        # The operator sets kendraTps to the index's quota; the sandbox's quota is the emulated one.
        quota = {"kendraTps": o.kendra_tps} if o.kendra_tps else {}
        config = {"kendraIndexId": INDEX_ID, **quota, **o.config}
        self.deployment = deploy(config, stack=o.option)
        self.outputs = self.deployment.outputs
        self.runtime = enter(lambdas.installed(self.deployment))
        enter(_counting_requests(self.runtime, s3_latency_ms=o.s3_latency_ms))
        self.delivery = enter(eventbridge.installed(duplicate_events=o.duplicate_events))
        if self.deployment.event_source_mappings:
            # Failed messages come back after the queue's visibility timeout in sandbox time (wait_scale).
            self.event_sources = enter(sqs.installed(
                self.deployment.event_source_mappings, self.runtime, visibility_scale=o.wait_scale,
                redeliver=o.sqs_redeliver, seed=o.seed))
        if not o.lambda_logs:
            # The handlers' structured logs are for CloudWatch; in the sandbox they drown the progress.
            logging.getLogger("kendra-ingestion").setLevel(logging.WARNING)
            # moto's ASL interpreter logs every absent optional path a Choice probes (IsPresent) as an error.
            logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        self._subscribe_notifications()
        from kendra_ingest import aws, runtime, telemetry

        #: The EMF lines the handlers printed (CloudWatch metrics on AWS), in order; ``OUT/metrics.jsonl``.
        self.metric_lines: list[str] = []
        self._stack.callback(telemetry.emit_to, telemetry.emit_to(self.metric_lines.append))

        aws.reset_clients()
        runtime.reset_caches()  # a new sandbox is a new index: no DescribeIndex answer carries over

    def _read_s3(self, bucket: str, key: str) -> bytes:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def _subscribe_notifications(self) -> None:
        import boto3

        sqs = boto3.client("sqs", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        url = sqs.create_queue(QueueName="sandbox-notifications")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=self.outputs["notification_topic_arn"], Protocol="sqs", Endpoint=arn)
        self._notifications_url = url
        self._notifications: dict[str, dict[str, Any]] = {}
        #: Every notification received, in order (``notifications()`` keeps the last one per job).
        self.notification_log: list[dict[str, Any]] = []

    # -- jobs ------------------------------------------------------------------------------------
    def submit(self, directory: Path, *, prefix: str | None = None) -> str:
        """Upload ``directory`` as a job (manifest last) and return its job id."""
        from kendra_ingest.manifest import derive_job_id

        self._uploads += 1
        prefix = prefix or f"{PREFIX_ROOT}/{self._uploads:03d}-{directory.name}"
        bucket = self.outputs["ingestion_bucket"]
        manifest = directory / "_control" / "manifest.json"
        if not manifest.is_file():
            raise SandboxError(f"{directory}: no _control/manifest.json")
        for path in sorted(directory.rglob("*")):
            rel = path.relative_to(directory).as_posix()
            if path.is_file() and not rel.startswith("_control/"):
                self.s3.put_object(Bucket=bucket, Key=f"{prefix}/{rel}", Body=path.read_bytes())
        raw = manifest.read_bytes()
        key = f"{prefix}/_control/manifest.json"
        job_id = derive_job_id(key, raw)
        # A job id can run again: only a summary written after this upload reports this run.
        self._before[job_id] = self._summary_etag(job_id)
        self.s3.put_object(Bucket=bucket, Key=key, Body=raw)
        self._submitted.append(job_id)
        return job_id

    def _summary_etag(self, job_id: str) -> str | None:
        try:
            return self.s3.head_object(Bucket=self.outputs["reports_bucket"],
                                       Key=f"_reports/{job_id}/summary.json")["ETag"]
        except self.s3.exceptions.ClientError:
            return None

    def _reported(self, job_id: str) -> bool:
        """The job's summary exists and was written after its (latest) upload."""
        etag = self._summary_etag(job_id)
        return etag is not None and etag != self._before.get(job_id)

    def _running(self) -> int:
        import boto3

        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = self.outputs["state_machine_arn"]
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=arn, statusFilter="RUNNING")
        return sum(len(p["executions"]) for p in pages)

    def _idle(self) -> tuple[bool, int]:
        """(nothing running anywhere, running executions). For sqs: every queue and DLQ empty too."""
        if self.options.option == "sfn":
            running = self._running()
            return running == 0 and self.runtime.idle(), running
        esm = self.event_sources
        if esm is None:
            return self.runtime.idle(), 0
        # A handler may send a message and finish between two looks: look again and compare activity.
        before = (esm.activity, len(self.runtime.invocations))
        idle = esm.idle() and self.runtime.idle() and esm.idle()
        return idle and before == (esm.activity, len(self.runtime.invocations)), 0

    def idle(self) -> bool:
        """Nothing is running: no execution, no invocation (option sqs: every queue and DLQ empty too)."""
        return self._idle()[0]

    def _run_watchdog(self) -> bool:
        """Option sqs: run the watchdog now, as its schedule would have (False when none is deployed)."""
        name = self.outputs.get("function_names", {}).get("watchdog")
        if self.options.option != "sqs" or not name:
            return False
        self.watchdog_runs += 1
        if not self.options.quiet:
            print("  ... the pipeline went quiet: running the watchdog (its 5-minute schedule)", file=sys.stderr)
        self.runtime.invoke_async(name, {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
        return True

    def wait(self, job_ids: list[str] | None = None) -> None:
        """Until every submitted job has its summary and nothing is running (bounded time).

        Option sqs: also every queue and dead-letter queue empty. When everything stopped but a report
        is missing, the watchdog runs (at most ``WATCHDOG_RUNS_WHEN_STALLED`` times, counted in
        :attr:`watchdog_runs`) before the run counts as broken.
        """
        job_ids = job_ids or self._submitted
        deadline = time.monotonic() + self.options.timeout_seconds
        shown = -1.0
        quiet_since: float | None = None
        watchdog_budget = WATCHDOG_RUNS_WHEN_STALLED
        while True:
            done = [j for j in job_ids if self._reported(j)]
            idle, running = self._idle()
            if len(done) == len(job_ids) and idle:
                return
            # Everything stopped but a report is missing: the pipeline itself broke.
            quiet_since = (quiet_since or time.monotonic()) if idle else None
            if quiet_since is not None and time.monotonic() - quiet_since > QUIET_SECONDS / 2 and watchdog_budget:
                watchdog_budget -= 1
                if self._run_watchdog():
                    quiet_since = None
                    continue
            if quiet_since is not None and time.monotonic() - quiet_since > QUIET_SECONDS:
                missing = sorted(set(job_ids) - set(done))
                raise SandboxError(f"the pipeline stopped without writing the report of {missing}")
            if errors := self.delivery_errors():
                raise SandboxError(f"event delivery failed: {errors[0]}")
            if self.event_sources is not None:
                if self.event_sources.errors:
                    raise SandboxError(f"event source mapping failed: {self.event_sources.errors[0]}")
                if stuck := self.event_sources.stuck():
                    raise SandboxError(f"the pipeline cannot settle a message: {stuck[0]}")
            now = time.monotonic()
            if not self.options.quiet and now - shown >= 2:
                shown = now
                calls = len(self.emulator.calls)
                if self.event_sources is not None:
                    queues = ", ".join(f"{name.removesuffix('.fifo')} {visible}+{flight}"
                                       for name, (visible, flight) in self.event_sources.depths().items())
                    where = f"queues (waiting+in flight): {queues}"
                else:
                    where = f"{running} executions running"
                print(f"  ... {len(done)}/{len(job_ids)} jobs reported, {where}, {calls} Kendra calls",
                      file=sys.stderr)
            if now > deadline:
                missing = sorted(set(job_ids) - set(done))
                raise SandboxError(f"jobs did not finish within {self.options.timeout_seconds:.0f}s: {missing}")
            time.sleep(0.05)

    def delivery_errors(self) -> list[Any]:
        return [e for e in self.delivery.items if type(e).__name__ == "DeliveryError"]

    # -- results ---------------------------------------------------------------------------------
    def report(self, job_id: str) -> tuple[dict[str, Any], bytes]:
        """(summary, failures.csv bytes) of a finished job."""
        bucket = self.outputs["reports_bucket"]
        summary = json.loads(self._read_s3(bucket, f"_reports/{job_id}/summary.json"))
        return summary, self._read_s3(bucket, f"_reports/{job_id}/failures.csv")

    def notifications(self) -> dict[str, dict[str, Any]]:
        """Notifications received so far, by job id (the last one wins)."""
        import boto3

        sqs = boto3.client("sqs", region_name=REGION)
        while True:
            got = sqs.receive_message(QueueUrl=self._notifications_url, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return self._notifications
            for m in messages:
                envelope = json.loads(m["Body"])
                note = {"subject": envelope.get("Subject"), "message": envelope.get("Message")}
                summary = _trailing_json(note["message"] or "")
                job_id = summary.get("jobId") if summary else None
                self.notification_log.append({**note, "jobId": job_id})
                self._notifications.setdefault(job_id or "unknown", note)
                if job_id:
                    self._notifications[job_id] = {**note, "summary": summary}
                sqs.delete_message(QueueUrl=self._notifications_url, ReceiptHandle=m["ReceiptHandle"])

    def write_outputs(self, out: Path, job_ids: list[str]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        notes = self.notifications()
        for job_id in job_ids:
            summary, failures = self.report(job_id)
            folder = out / job_id
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "failures.csv").write_bytes(failures)
            (folder / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
            (folder / "notification.json").write_text(
                json.dumps(notes.get(job_id, {}), indent=2, ensure_ascii=False))
        self.write_index(out)
        (out / "invocations.json").write_text(json.dumps(
            [log.dump() for log in self.runtime.invocation_logs], indent=1, ensure_ascii=False))


    def write_index(self, out: Path) -> None:
        """``out/index.json`` (the emulated index), ``out/calls.json`` (every Kendra call, in order) and
        ``out/metrics.jsonl`` (the EMF lines the handlers printed)."""
        out.mkdir(parents=True, exist_ok=True)
        (out / "index.json").write_text(json.dumps(self.emulator.index_snapshot(), indent=2, ensure_ascii=False,
                                                   default=str))
        (out / "calls.json").write_text(json.dumps(self.emulator.calls, indent=2, ensure_ascii=False))
        (out / "metrics.jsonl").write_text("".join(line + "\n" for line in self.metric_lines))


def _trailing_json(message: str) -> dict[str, Any] | None:
    """The summary JSON that ends every notification body."""
    start = message.find("\n{")
    while start != -1:
        try:
            value = json.loads(message[start:])
            return value if isinstance(value, dict) else None
        except ValueError:
            start = message.find("\n{", start + 1)
    return None


@contextmanager
def _hooked_clients(service: str, hooks: list[tuple[str, Any]]) -> Iterator[None]:
    """Register ``hooks`` (botocore event name, handler) on every ``service`` client created meanwhile."""
    import botocore.client

    original = botocore.client.ClientCreator.create_client

    # Named create_client on purpose: iam_recorder recognises client-creation wrappers by that name.
    def create_client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        client = original(self, service_name, *args, **kwargs)
        if service_name == service:
            for event, handler in hooks:
                client.meta.events.register(event, handler)
        return client

    botocore.client.ClientCreator.create_client = create_client  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.client.ClientCreator.create_client = original  # type: ignore[method-assign]


@contextmanager
def _counting_requests(runtime: Any, *, s3_latency_ms: float) -> Iterator[None]:
    """Charge every AWS request a function makes to its invocation (``OUT/invocations.json``), and
    delay each of its S3 requests by ``s3_latency_ms``. Requests on the sandbox's own clients, or made
    outside any invocation, are neither counted nor delayed."""
    from botocore.client import BaseClient

    from sandbox import lambdas

    original = BaseClient._make_api_call
    delay = s3_latency_ms / 1000.0

    def make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
        if not getattr(self, "_sandbox_own", False) and lambdas.current_invocation() is not None:
            service = self.meta.service_model.endpoint_prefix
            runtime.count_request(service, operation_name)
            if delay and service == "s3":
                time.sleep(delay)
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
    try:
        yield
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


@contextmanager
def _crash_after_kendra(probability: float, seed: int | None) -> Iterator[None]:
    """Make a Kendra write raise in its caller after the emulator applied it (an ``after-call`` hook).

    Each decision is drawn from (seed, operation, document ids, how often this request was seen), not from
    one shared generator, so the same run crashes the same calls whatever the thread interleaving.
    """
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def crash(http_response: Any, parsed: Any, model: Any, context: Any = None, **kwargs: Any) -> None:
        if model.name not in {"BatchPutDocument", "BatchDeleteDocument"}:
            return
        params = (context or {}).get("sandbox_params") or {}
        ids = [d.get("Id", "") for d in params.get("Documents", ())] or list(params.get("DocumentIdList", ()))
        key = f"{model.name}:{'|'.join(ids)}"
        with lock:
            seen[key] = seen.get(key, 0) + 1
            draw = random.Random(f"{seed}:{key}:{seen[key]}").random()
        if draw < probability:
            raise SimulatedCrash(f"sandbox: handler died right after a successful {model.name}")

    def remember(params: dict[str, Any], context: Any, **kwargs: Any) -> None:
        context["sandbox_params"] = dict(params)

    with _hooked_clients("kendra", [("before-parameter-build.kendra", remember), ("after-call.kendra", crash)]):
        yield


@contextmanager
def _recording_s3_reads(reads: list[str]) -> Iterator[None]:
    """Record the key of every S3 GetObject API call (proves unchanged documents are never read).

    Hooked on clients, not on moto's backend: moto reads objects internally (on put, for versioning).
    """
    def record(params: dict[str, Any], **kwargs: Any) -> None:
        reads.append(params["Key"])

    # before-parameter-build sees the API parameters (before-call only the serialised request).
    with _hooked_clients("s3", [("before-parameter-build.s3.GetObject", record)]):
        yield


def result_line(job_id: str, summary: dict[str, Any], failures_csv: bytes) -> str:
    """One line per finished job: status, counts and failures by code."""
    import csv
    import io
    from collections import Counter

    d, x = summary.get("documents", {}), summary.get("deletes", {})
    rows = list(csv.DictReader(io.StringIO(failures_csv.decode("utf-8", "replace"))))
    codes = Counter(row.get("errorCode", "") for row in rows)
    by_code = ", ".join(f"{code} {n}" for code, n in sorted(codes.items())) or "none"
    excluded = f", {d['excluded']} excluded" if d.get("excluded") else ""
    full_sync = f" ({x['fullSync']} by the full sync)" if x.get("fullSync") else ""
    line = (f"{job_id}: {summary.get('status')} - documents {d.get('requested', 0)} requested, {d.get('put', 0)} put, "
            f"{d.get('skippedUnchanged', 0)} unchanged, {d.get('failed', 0)} failed{excluded}; deletes "
            f"{x.get('requested', 0)} requested{full_sync}, {x.get('deleted', 0)} deleted, {x.get('failed', 0)} "
            f"failed; failures by code: {by_code}")
    if summary.get("error"):
        line += f"; error: {summary['error']}"
    if summary.get("message"):
        line += f"; note: {summary['message']}"
    return line


def run(inputs: list[Path], out: Path, options: SandboxOptions, *, prefixes: list[str] | None = None) -> int:
    """The CLI's ``run``: every input in order on one deployed stack; 0 when every job finished.

    ``prefixes`` (one per input) replaces the generated upload prefixes.
    """
    if prefixes is not None and len(prefixes) != len(inputs):
        raise SandboxError(f"{len(prefixes)} prefixes for {len(inputs)} inputs")
    started = time.monotonic()
    with Sandbox(options) as box:
        job_ids: list[str] = []
        for n, directory in enumerate(inputs):
            job_id = box.submit(directory, prefix=prefixes[n].strip("/") if prefixes else None)
            if not options.quiet:
                print(f"==> {job_id}: submitted {directory} (option {options.option})", file=sys.stderr)
            box.wait([job_id])
            job_ids.append(job_id)
            if not options.quiet:
                summary, failures = box.report(job_id)
                print(f"==> {result_line(job_id, summary, failures)}", file=sys.stderr)
        box.write_outputs(out, job_ids)
    if not options.quiet:
        print(f"==> done in {time.monotonic() - started:.1f}s; outputs in {out}", file=sys.stderr)
    return 0
