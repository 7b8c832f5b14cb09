"""Run jobs through the real program deployed into the embedded AWS (DESIGN section 7).

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
    lambda_logs: bool = False
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
        self._uploads = 0

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

        from sandbox import eventbridge, lambdas, moto_fixes
        from sandbox.deploy import deploy
        from sandbox.kendra_emulator import KendraEmulator

        o = self.options
        enter = self._stack.enter_context
        enter(_fake_credentials())
        enter(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        import boto3

        self.s3 = boto3.client("s3", region_name=REGION)
        self.emulator = KendraEmulator(
            index_id=INDEX_ID, index_fields=o.index_fields, tps=o.kendra_tps,
            throttle_probability=o.kendra_throttle, internal_error_probability=o.kendra_internal_error,
            seed=o.seed, indexing_delay_seconds=o.indexing_delay_seconds, s3_reader=self._read_s3,
        )
        enter(self.emulator.installed())
        self.s3_reads: list[str] = []
        enter(_recording_s3_reads(self.s3_reads))
        if o.crash_after_kendra > 0:
            enter(_crash_after_kendra(o.crash_after_kendra, o.seed))
        from sandbox.iam_recorder import RecordedCalls, recording

        self.aws_calls: RecordedCalls = enter(recording()) if o.record_calls else RecordedCalls()
        enter(moto_fixes.applied(wait_scale=o.wait_scale))
        config = {"kendraIndexId": INDEX_ID, **o.config}
        self.deployment = deploy(config, stack=o.option)
        self.outputs = self.deployment.outputs
        self.runtime = enter(lambdas.installed(self.deployment))
        self.delivery = enter(eventbridge.installed(duplicate_events=o.duplicate_events))
        if not o.lambda_logs:
            # The handlers' structured logs are for CloudWatch; in the sandbox they drown the progress.
            logging.getLogger("kendra-ingestion").setLevel(logging.WARNING)
            # moto's ASL interpreter logs every absent optional path a Choice probes (IsPresent) as an error.
            logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        self._subscribe_notifications()
        from kendra_ingest import aws

        aws.reset_clients()

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
        self.s3.put_object(Bucket=bucket, Key=key, Body=raw)
        job_id = derive_job_id(key, raw)
        self._submitted.append(job_id)
        return job_id

    def _running(self) -> int:
        import boto3

        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = self.outputs["state_machine_arn"]
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=arn, statusFilter="RUNNING")
        return sum(len(p["executions"]) for p in pages)

    def wait(self, job_ids: list[str] | None = None) -> None:
        """Until every submitted job has its summary and nothing is running (bounded time)."""
        job_ids = job_ids or self._submitted
        deadline = time.monotonic() + self.options.timeout_seconds
        reports = self.outputs["reports_bucket"]
        shown = -1.0
        quiet_since: float | None = None
        while True:
            done = [j for j in job_ids if self._exists(reports, f"_reports/{j}/summary.json")]
            running = self._running() if self.options.option == "sfn" else 0
            idle = running == 0 and self.runtime.idle()
            if len(done) == len(job_ids) and idle:
                return
            # Everything stopped but a report is missing: the pipeline itself broke.
            quiet_since = (quiet_since or time.monotonic()) if idle else None
            if quiet_since is not None and time.monotonic() - quiet_since > QUIET_SECONDS:
                missing = sorted(set(job_ids) - set(done))
                raise SandboxError(f"the pipeline stopped without writing the report of {missing}")
            if errors := self.delivery_errors():
                raise SandboxError(f"event delivery failed: {errors[0]}")
            now = time.monotonic()
            if not self.options.quiet and now - shown >= 2:
                shown = now
                calls = len(self.emulator.calls)
                print(f"  ... {len(done)}/{len(job_ids)} jobs reported, {running} executions running, "
                      f"{calls} Kendra calls", file=sys.stderr)
            if now > deadline:
                missing = sorted(set(job_ids) - set(done))
                raise SandboxError(f"jobs did not finish within {self.options.timeout_seconds:.0f}s: {missing}")
            time.sleep(0.05)

    def delivery_errors(self) -> list[Any]:
        return [e for e in self.delivery.items if type(e).__name__ == "DeliveryError"]

    def _exists(self, bucket: str, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=bucket, Key=key)
            return True
        except self.s3.exceptions.ClientError:
            return False

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
        (out / "index.json").write_text(json.dumps(self.emulator.index_snapshot(), indent=2, ensure_ascii=False,
                                                   default=str))
        (out / "calls.json").write_text(json.dumps(self.emulator.calls, indent=2, ensure_ascii=False))


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
def _crash_after_kendra(probability: float, seed: int | None) -> Iterator[None]:
    """Make a Kendra write raise in its caller after the emulator applied it (an ``after-call`` hook).

    Each decision is drawn from (seed, operation, document ids, how often this request was seen), not from
    one shared generator, so the same run crashes the same calls whatever the thread interleaving.
    """
    import botocore.client

    seen: dict[str, int] = {}
    lock = threading.Lock()
    original = botocore.client.ClientCreator.create_client

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
        context["sandbox_params"] = params

    def create_client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        client = original(self, service_name, *args, **kwargs)
        if service_name == "kendra":
            client.meta.events.register("before-call.kendra", remember)
            client.meta.events.register("after-call.kendra", crash)
        return client

    botocore.client.ClientCreator.create_client = create_client  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.client.ClientCreator.create_client = original  # type: ignore[method-assign]


@contextmanager
def _recording_s3_reads(reads: list[str]) -> Iterator[None]:
    """Record the key of every S3 GetObject API call (proves unchanged documents are never read).

    Hooked on clients, not on moto's backend: moto reads objects internally (on put, for versioning).
    """
    import botocore.client

    original = botocore.client.ClientCreator.create_client

    def record(params: dict[str, Any], **kwargs: Any) -> None:
        reads.append(params.get("Key", ""))

    def create_client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        client = original(self, service_name, *args, **kwargs)
        if service_name == "s3":
            client.meta.events.register("before-call.s3.GetObject", record)
        return client

    botocore.client.ClientCreator.create_client = create_client  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.client.ClientCreator.create_client = original  # type: ignore[method-assign]


def run(inputs: list[Path], out: Path, options: SandboxOptions) -> int:
    """The CLI's ``run``: every input in order on one deployed stack; 0 when every job finished."""
    started = time.monotonic()
    with Sandbox(options) as box:
        job_ids: list[str] = []
        for directory in inputs:
            job_id = box.submit(directory)
            if not options.quiet:
                print(f"==> {job_id}: submitted {directory} (option {options.option})", file=sys.stderr)
            box.wait([job_id])
            job_ids.append(job_id)
            if not options.quiet:
                summary, _ = box.report(job_id)
                print(f"==> {job_id}: {summary['status']}", file=sys.stderr)
        box.write_outputs(out, job_ids)
    if not options.quiet:
        print(f"==> done in {time.monotonic() - started:.1f}s; outputs in {out}", file=sys.stderr)
    return 0
