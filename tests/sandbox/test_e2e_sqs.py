"""End to end through the real program deployed into moto: option sqs.

The same scenarios as test_e2e_sfn.py, plus what only a queue pipeline meets: a message delivered twice,
a worker dying right after Kendra accepted its call, a part that ends in a dead-letter queue, and two
summarizers racing for one report. Every run checks conservation (the summary's counts add up), that the mappings
settled every message, and that no job needed the watchdog.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import boto3
import pytest

from sandbox.run import Sandbox, SandboxOptions
from tests.sandbox.conftest import (
    SAMPLE,
    TENANCY_SOURCES,
    assert_conserved,
    check_connector_jobs,
    check_index_full,
    check_indexing_unconfirmed,
    check_manifests_outside_their_prefix_fail,
    check_one_source_cannot_touch_anothers_documents,
    check_sample_accounted,
    check_sample_outputs,
    check_the_owner_may_delete,
    check_unchanged_rerun,
    make_job,
    puts_of,
    rows,
    run_connector_jobs,
    run_sample_twice,
    run_tenancy,
)

FIELDS = json.loads((SAMPLE / "index-fields.json").read_text())
QUEUES = ("put_queue_url", "delete_queue_url", "put_dlq_url", "delete_dlq_url")


def docs(n: int, prefix: str = "d") -> dict:
    return {f"{prefix}-{i:03d}.txt": (f"body {i}", {"Title": f"{prefix} {i}"}) for i in range(n)}


def options(**kwargs: Any) -> SandboxOptions:
    return SandboxOptions(**{"timeout_seconds": 120, "option": "sqs", **kwargs})


def assert_settled(box: Sandbox, *, watchdog: bool = False) -> None:
    """Every queue and DLQ empty, the mappings without errors, and (unless allowed) no watchdog run."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    for output in QUEUES:
        attrs = sqs.get_queue_attributes(QueueUrl=box.outputs[output], AttributeNames=["All"])["Attributes"]
        assert attrs["ApproximateNumberOfMessages"] == attrs["ApproximateNumberOfMessagesNotVisible"] == "0", output
    assert box.event_sources.errors == []
    assert box.event_sources.stuck() == []
    if not watchdog:
        assert box.watchdog_runs == 0


def notified(box: Sandbox) -> list[str | None]:
    """The job id of every notification published so far, in order (duplicates kept)."""
    box.notifications()
    return [n["jobId"] for n in box.notification_log]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    with Sandbox(options(index_fields=FIELDS, seed=1, config={"maxDocumentBytes": 65536})) as box:
        run = run_sample_twice(box, tmp_path_factory.mktemp("out"))
        assert_settled(box)
        return {**run, "batches": list(box.event_sources.batches)}


def test_sample_job_accounts_for_every_document(sample_run):
    check_sample_accounted(sample_run, "sqs")


def test_sample_job_went_through_both_queues(sample_run):
    mappings = Counter(b.mapping for b in sample_run["batches"])
    assert any("put" in m and "dlq" not in m for m in mappings), mappings
    assert any("delete" in m and "dlq" not in m for m in mappings), mappings
    assert not any("dlq" in m for m in mappings), mappings
    assert all(len(b.message_ids) <= 10 for b in sample_run["batches"])


def test_sample_outputs_written(sample_run):
    check_sample_outputs(sample_run, "sqs")


def test_rerun_of_unchanged_job_sends_and_reads_nothing(sample_run):
    check_unchanged_rerun(sample_run)


def test_duplicate_events_run_the_job_once(tmp_path):
    folder = make_job(tmp_path, "dup-1", docs(12))
    with Sandbox(options(duplicate_events=3)) as box:
        job = box.submit(folder)
        box.wait([job])
        summary, failures = box.report(job)
        assert_conserved(summary, failures)
        assert sorted(puts_of(box.emulator.calls)) == sorted(f"d-{i:03d}" for i in range(12))
        assert summary["documents"]["put"] == 12
        assert notified(box) == [job]
        # The same job again, nothing changed: no put call and no document body read.
        calls, reads = len(box.emulator.calls), len(box.s3_reads)
        again = box.submit(folder)
        box.wait([again])
        summary, failures = box.report(again)
        assert_conserved(summary, failures)
        assert summary["documents"]["skippedUnchanged"] == 12
        assert puts_of(box.emulator.calls[calls:]) == []
        assert not [k for k in box.s3_reads[reads:] if "/batches/" in k and not k.endswith(".metadata.json")]
        assert_settled(box)


def test_same_source_jobs_are_serialised(tmp_path):
    first = make_job(tmp_path, "src-a", docs(40, "a"), source="shared")
    second = make_job(tmp_path, "src-b", docs(40, "b"), source="shared")
    with Sandbox(options(kendra_tps=40)) as box:
        a, b = box.submit(first), box.submit(second)
        box.wait([a, b])
        order = [i[0] for i in puts_of(box.emulator.calls)]
        # All of one job's puts come before all of the other's.
        assert order == sorted(order) or order == sorted(order, reverse=True), order
        for job in (a, b):
            assert_conserved(*box.report(job))
        assert_settled(box)


# --------------------------------------------------------------------------------------------------
# What only the queue pipeline meets
# --------------------------------------------------------------------------------------------------


def test_a_message_delivered_twice_is_processed_once(tmp_path):
    folder = make_job(tmp_path, "twice-1", docs(25), deletes=["gone-1"])
    with Sandbox(options(sqs_redeliver=1.0, seed=3, wait_scale=0.00005)) as box:
        job = box.submit(folder)
        box.wait([job])
        summary, failures = box.report(job)
        assert_conserved(summary, failures)
        assert summary["status"] == "SUCCEEDED"
        esm = box.event_sources
        assert esm.redelivered, "every message's first delete was to be lost"
        assert any(2 in b.receive_counts for b in esm.batches)
        # The second delivery found its part complete: no second Kendra call, no double count.
        assert sorted(puts_of(box.emulator.calls)) == sorted(f"d-{i:03d}" for i in range(25))
        assert summary["documents"]["put"] == 25 and summary["deletes"]["deleted"] == 1
        assert notified(box) == [job]
        assert_settled(box)


def test_a_worker_crash_after_kendra_is_retried_without_losing_documents(tmp_path):
    folder = make_job(tmp_path, "crash-1", docs(40), deletes=["gone-1", "gone-2"])
    with Sandbox(options(crash_after_kendra=0.4, seed=5, wait_scale=0.00005)) as box:
        job = box.submit(folder)
        box.wait([job])
        summary, failures = box.report(job)
        assert_conserved(summary, failures)
        assert any(b.outcome != "ok" for b in box.event_sources.batches)  # some batch did fail
        # A part either succeeded on a later receive or went to the DLQ; nothing else.
        assert {r["errorCode"] for r in rows(failures)} <= {"DeadLettered"}
        index = box.emulator.index_snapshot()["documents"]
        dead = {r["documentId"] for r in rows(failures)}
        assert {f"d-{i:03d}" for i in range(40)} - dead <= set(index)
        assert summary["documents"]["put"] == 40 - len([d for d in dead if d.startswith("d-")])
        assert_settled(box)


def test_a_part_that_keeps_failing_ends_in_the_dead_letter_queue_and_is_settled_from_kendra(tmp_path):
    """Every worker dies right after Kendra accepted its part: the part reaches the dead-letter queue, whose
    handler asks Kendra what it holds. The documents are indexed, so the report says put, not failed."""
    folder = make_job(tmp_path, "dlq-1", docs(5))
    with Sandbox(options(crash_after_kendra=1.0, seed=1, wait_scale=0.00005)) as box:
        job = box.submit(folder)
        box.wait([job])
        summary, failures = box.report(job)
        assert_conserved(summary, failures)
        assert summary["status"] == "SUCCEEDED", rows(failures)
        assert summary["documents"]["put"] == 5 and summary["indexing"]["verified"] == 5
        assert set(box.emulator.index_snapshot()["documents"]) == {f"d-{i:03d}" for i in range(5)}
        batches = box.event_sources.batches
        worker = [b for b in batches if b.function_name == box.outputs["function_names"]["put_worker"]]
        dead = [b for b in batches if b.function_name == box.outputs["function_names"]["dead_letter"]]
        assert max(c for b in worker for c in b.receive_counts) == 5  # the queue's maxReceiveCount
        assert len(dead) == 1 and dead[0].outcome == "ok"
        assert_settled(box)


BROKEN = [b"{not json", b'{"schemaVersion": 1}', b'{"schemaVersion": 1, "jobId": "x", "colour": 1}']


class TestOnOneStack:
    """Scenarios that need no special sandbox option share one deployed stack (distinct job ids)."""

    @pytest.fixture(scope="class")
    def box(self):
        with Sandbox(options()) as shared:
            yield shared

    def test_deletes_including_unknown_ids(self, tmp_path, box):
        first = make_job(tmp_path, "del-1", docs(5, "x"))
        second = make_job(tmp_path, "del-2", {}, deletes=["x-000", "x-001", "never-there"])
        a = box.submit(first)
        box.wait([a])
        assert_conserved(*box.report(a))
        b = box.submit(second)
        box.wait([b])
        summary, failures = box.report(b)
        assert_conserved(summary, failures)
        assert summary["deletes"] == {"requested": 3, "deleted": 3, "failed": 0, "fullSync": 0}
        index = box.emulator.index_snapshot()["documents"]
        assert "x-000" not in index and "x-002" in index
        assert_settled(box)

    def test_expected_documents_mismatch_fails_fast(self, tmp_path, box):
        folder = make_job(tmp_path, "early-1", docs(3, "early"), expectedDocuments=5)
        calls, batches = len(box.emulator.calls), len(box.event_sources.batches)
        job = box.submit(folder)
        box.wait([job])
        summary, failures = box.report(job)
        assert summary["status"] == "FAILED"
        assert "expectedDocuments" in summary["error"]
        assert box.emulator.calls[calls:] == []
        assert box.event_sources.batches[batches:] == []  # nothing was queued
        assert_conserved(summary, failures)
        assert_settled(box)

    def test_broken_manifests_still_report_notify_and_release(self, tmp_path, box):
        calls = len(box.emulator.calls)
        for n, manifest in enumerate(BROKEN):
            folder = make_job(tmp_path / str(n), "broken", docs(2))
            (folder / "_control" / "manifest.json").write_bytes(manifest)
            job = box.submit(folder)
            box.wait([job])
            summary, failures = box.report(job)
            assert summary["status"] == "FAILED" and summary["error"], manifest
            assert_conserved(summary, failures)
            assert "FAILED" in box.notifications()[job]["subject"]
        assert box.emulator.calls[calls:] == []
        items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=box.outputs["lock_table"])["Items"]
        assert not [i for i in items if i["pk"]["S"].startswith("source#")]
        assert_settled(box)

    def test_two_summarizers_at_once_write_one_report(self, tmp_path, box):
        folder = make_job(tmp_path, "race-1", docs(12, "race"))
        summarizer = box.outputs["function_names"]["summarizer"]
        runtime = box.runtime
        original = runtime._submit
        futures: list[Future[Any]] = []
        lock = threading.Lock()

        def twice(cfg: Any, event: Any, invocation_type: str) -> Future[Any]:
            # Every summarizer request is delivered twice, both at once (asynchronous invocations
            # are at least once, and two workers may both see the last part complete).
            if cfg.name != summarizer:
                return original(cfg, event, invocation_type)
            pair = [original(cfg, event, invocation_type) for _ in range(2)]
            with lock:
                futures.extend(pair)
            return pair[0]

        runtime._submit = twice  # type: ignore[method-assign]
        try:
            job = box.submit(folder)
            box.wait([job])
        finally:
            del runtime._submit  # back to the class's method
        summary, failures = box.report(job)
        assert_conserved(summary, failures)
        results = [f.result()[0] for f in futures]
        assert len(results) >= 2 and all(f.result()[1] is None for f in futures)
        assert [r["summarized"] for r in results].count(True) == 1, results
        assert [j for j in notified(box) if j == job] == [job]
        assert summary["documents"]["put"] == 12
        assert_settled(box)

    def test_a_lost_summary_request_is_recovered_by_the_watchdog(self, tmp_path, box):
        folder = make_job(tmp_path, "lost-1", docs(4, "lost"))
        summarizer = box.outputs["function_names"]["summarizer"]
        runtime, original = box.runtime, box.runtime._submit
        dropped: list[Any] = []

        def drop_first(cfg: Any, event: Any, invocation_type: str) -> Future[Any]:
            # The worker's asynchronous summary request is lost (Lambda retries async invocations
            # only twice): the pipeline goes quiet, and the scheduled watchdog must finish the job.
            if cfg.name == summarizer and not dropped:
                dropped.append(event)
                done: Future[Any] = Future()
                done.set_result((None, None))
                return done
            return original(cfg, event, invocation_type)

        runs = box.watchdog_runs
        runtime._submit = drop_first  # type: ignore[method-assign]
        try:
            job = box.submit(folder)
            box.wait([job])
        finally:
            del runtime._submit
        assert dropped and box.watchdog_runs == runs + 1
        summary, failures = box.report(job)
        assert_conserved(summary, failures)
        assert summary["status"] == "SUCCEEDED" and summary["documents"]["put"] == 4
        assert_settled(box, watchdog=True)


DATA_SOURCE = "custom-source-1"


class TestDataSourceSyncJob:
    """``kendraDataSourceId``: each job runs inside a sync job of the CUSTOM data source (one stack)."""

    @pytest.fixture(scope="class")
    def box(self):
        with Sandbox(options(config={"kendraDataSourceId": DATA_SOURCE})) as shared:
            yield shared

    @staticmethod
    def history(box: Sandbox) -> dict[str, dict[str, Any]]:
        kendra = boto3.client("kendra", region_name="us-east-1")
        found = kendra.list_data_source_sync_jobs(Id=DATA_SOURCE, IndexId=box.outputs["kendra_index_id"])["History"]
        return {run["ExecutionId"]: run for run in found}

    def test_data_source_sync_job_wraps_the_job(self, tmp_path, box):
        before = self.history(box)
        folder = make_job(tmp_path, "sync-1", docs(12), deletes=["gone-1"])
        job = box.submit(folder)
        box.wait([job])
        summary, failures = box.report(job)
        assert_conserved(summary, failures)
        assert summary["documents"]["put"] == 12 and summary["deletes"]["deleted"] == 1
        (run,) = [run for key, run in self.history(box).items() if key not in before]
        assert run["Status"] in {"SYNCING_INDEXING", "SUCCEEDED"}  # stopped by the job's end
        index = box.emulator.index_snapshot()["documents"]
        for i in range(12):
            assert index[f"d-{i:03d}"]["attributes"]["_data_source_sync_job_execution_id"] == {
                "StringValue": run["ExecutionId"]}
        assert_settled(box)

    def test_a_busy_data_source_makes_the_job_wait_for_the_watchdog(self, tmp_path, box):
        kendra = boto3.client("kendra", region_name="us-east-1")
        index_id = box.outputs["kendra_index_id"]
        # A sync job started elsewhere (the console, another team) holds the data source.
        other = kendra.start_data_source_sync_job(Id=DATA_SOURCE, IndexId=index_id)["ExecutionId"]
        folder = make_job(tmp_path, "busy-1", docs(6, "busy"), source="busy")
        calls, runs = len(box.emulator.calls), box.watchdog_runs
        job = box.submit(folder)
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        deadline = time.monotonic() + 30
        while not dynamodb.get_item(TableName=box.outputs["lock_table"], Key={"pk": {"S": "waiting#busy"}},
                                    ConsistentRead=True).get("Item", {}).get("jobs", {}).get("M"):
            assert time.monotonic() < deadline, "the producer did not record the job as waiting"
            time.sleep(0.05)
        assert [c["operation"] for c in box.emulator.calls[calls:]] == ["StartDataSourceSyncJob"]  # refused
        assert box.emulator.calls[calls]["outcome"] != "ok"

        kendra.stop_data_source_sync_job(Id=DATA_SOURCE, IndexId=index_id)
        box.wait([job])  # the pipeline is quiet: the watchdog (its schedule) restarts the producer
        assert box.watchdog_runs == runs + 1
        summary, failures = box.report(job)
        assert_conserved(summary, failures)
        assert summary["status"] == "SUCCEEDED" and summary["documents"]["put"] == 6
        history = self.history(box)
        ours = box.emulator.index_snapshot()["documents"]["busy-000"]["attributes"]
        ours = ours["_data_source_sync_job_execution_id"]["StringValue"]
        assert ours != other and history[ours]["Status"] in {"SYNCING_INDEXING", "SUCCEEDED"}
        assert history[other]["Status"] != "SYNCING"
        assert_settled(box, watchdog=True)


def test_the_same_job_id_again_is_a_new_run_with_its_own_report(tmp_path: Path) -> None:
    """A re-upload reuses nothing of the previous run's work state (plan, part results, verification)."""
    first = make_job(tmp_path / "a", "again-1", {"bad-1.txt": (b"caf\xe9", {"Title": "x"}),
                                               "bad-2.txt": (b"cr\xe8me", {"Title": "y"})})
    second = make_job(tmp_path / "b", "again-1", {"good.txt": ("fine", {"Title": "z"})})
    with Sandbox(options()) as box:
        box.wait([box.submit(first)])
        summary, _ = box.report("again-1")
        assert summary["documents"] == {"requested": 2, "put": 0, "skippedUnchanged": 0, "failed": 2, "excluded": 0}
        box.wait([box.submit(second)])
        summary, failures = box.report("again-1")
        assert_conserved(summary, failures)
        assert summary["documents"] == {"requested": 1, "put": 1, "skippedUnchanged": 0, "failed": 0, "excluded": 0}
        assert rows(failures) == []
        assert_settled(box)


def test_indexing_not_confirmed_in_the_window_is_a_failure_and_resent(tmp_path):
    check_indexing_unconfirmed("sqs", tmp_path)


def test_a_full_index_stops_the_job_sending_and_reports_what_was_not_sent(tmp_path):
    check_index_full("sqs", tmp_path)


def test_a_connector_layout_bucket_gives_what_the_connector_gives_and_full_sync_deletes(tmp_path):
    with Sandbox(options()) as box:
        check_connector_jobs(run_connector_jobs(box, tmp_path))
        assert_settled(box)


@pytest.fixture(scope="module")
def tenancy_run(tmp_path_factory):
    options = SandboxOptions(timeout_seconds=120, option="sqs", seed=1, config={"sources": TENANCY_SOURCES})
    with Sandbox(options) as box:
        return run_tenancy(box, tmp_path_factory.mktemp("tenancy"))


def test_tenancy_one_source_cannot_overwrite_or_delete_anothers_documents(tenancy_run):
    check_one_source_cannot_touch_anothers_documents(tenancy_run)


def test_tenancy_a_manifest_outside_its_sources_prefix_fails_and_sends_nothing(tenancy_run):
    check_manifests_outside_their_prefix_fail(tenancy_run)


def test_tenancy_the_owner_may_delete_its_document(tenancy_run):
    check_the_owner_may_delete(tenancy_run)
