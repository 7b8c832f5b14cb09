"""End to end through the real program deployed into moto: option sfn."""

from __future__ import annotations

import json

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
    rows,
    run_connector_jobs,
    run_sample_twice,
    run_tenancy,
)

FIELDS = json.loads((SAMPLE / "index-fields.json").read_text())


def docs(n: int, prefix: str = "d") -> dict:
    return {f"{prefix}-{i:03d}.txt": (f"body {i}", {"Title": f"{prefix} {i}"}) for i in range(n)}


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    options = SandboxOptions(timeout_seconds=120, option="sfn", index_fields=FIELDS, seed=1,
                             config={"maxDocumentBytes": 65536})
    with Sandbox(options) as box:
        return run_sample_twice(box, tmp_path_factory.mktemp("out"))


def test_sample_job_accounts_for_every_document(sample_run):
    check_sample_accounted(sample_run, "sfn")


def test_sample_outputs_written(sample_run):
    check_sample_outputs(sample_run, "sfn")


def test_rerun_of_unchanged_job_sends_and_reads_nothing(sample_run):
    check_unchanged_rerun(sample_run)


def test_duplicate_events_run_the_job_once(tmp_path):
    folder = make_job(tmp_path, "dup-1", docs(12))
    with Sandbox(SandboxOptions(timeout_seconds=120, option="sfn", duplicate_events=3)) as box:
        job = box.submit(folder)
        box.wait([job])
        summary, failures = box.report(job)
        assert_conserved(summary, failures)
        puts = [c for c in box.emulator.calls if c["operation"] == "BatchPutDocument"]
        assert sum(len(c["documentIds"]) for c in puts) == 12
        assert summary["documents"]["put"] == 12
        # Two parts in one Map item: the summary counts each part's own calls, once.
        assert summary["kendra"]["batchPutCalls"] == len(puts) == 2
        # The same job again, nothing changed: no put call and no document body read.
        calls, reads = len(box.emulator.calls), len(box.s3_reads)
        again = box.submit(folder)
        box.wait([again])
        summary, failures = box.report(again)
        assert_conserved(summary, failures)
        assert summary["documents"]["skippedUnchanged"] == 12
        assert not [c for c in box.emulator.calls[calls:] if c["operation"] == "BatchPutDocument"]
        assert not [k for k in box.s3_reads[reads:] if "/batches/" in k and not k.endswith(".metadata.json")]


def test_deletes_including_unknown_ids(tmp_path):
    first = make_job(tmp_path, "del-1", docs(5))
    second = make_job(tmp_path, "del-2", {}, deletes=["d-000", "d-001", "never-there"])
    with Sandbox(SandboxOptions(timeout_seconds=120, option="sfn")) as box:
        box.wait([box.submit(first)])
        b = box.submit(second)
        box.wait([b])
        summary, failures = box.report(b)
        assert_conserved(summary, failures)
        assert summary["deletes"] == {"requested": 3, "deleted": 3, "failed": 0, "fullSync": 0}
        index = box.emulator.index_snapshot()["documents"]
        assert "d-000" not in index and "d-002" in index


def test_same_source_jobs_are_serialised(tmp_path):
    first = make_job(tmp_path, "src-a", docs(40, "a"), source="shared")
    second = make_job(tmp_path, "src-b", docs(40, "b"), source="shared")
    with Sandbox(SandboxOptions(timeout_seconds=120, option="sfn", kendra_tps=40)) as box:
        a, b = box.submit(first), box.submit(second)
        box.wait([a, b])
        order = [c["documentIds"][0][0] for c in box.emulator.calls if c["operation"] == "BatchPutDocument"]
        # All of one job's puts come before all of the other's.
        assert order == sorted(order) or order == sorted(order, reverse=True), order
        for job in (a, b):
            assert_conserved(*box.report(job))


def test_expected_documents_mismatch_fails_fast(tmp_path):
    folder = make_job(tmp_path, "early-1", docs(3), expectedDocuments=5)
    with Sandbox(SandboxOptions(timeout_seconds=120, option="sfn")) as box:
        job = box.submit(folder)
        box.wait([job])
        summary, failures = box.report(job)
        assert summary["status"] == "FAILED"
        assert "expectedDocuments" in summary["error"]
        assert box.emulator.calls == []
        assert_conserved(summary, failures)


BROKEN = [b"{not json", b'{"schemaVersion": 1}', b'{"schemaVersion": 1, "jobId": "x", "colour": 1}']


@pytest.mark.parametrize("manifest", BROKEN)
def test_broken_manifest_still_reports_notifies_and_releases(tmp_path, manifest):
    folder = make_job(tmp_path, "broken", docs(2))
    (folder / "_control" / "manifest.json").write_bytes(manifest)
    with Sandbox(SandboxOptions(timeout_seconds=120, option="sfn")) as box:
        job = box.submit(folder)
        box.wait([job])
        summary, failures = box.report(job)
        assert summary["status"] == "FAILED" and summary["error"]
        assert_conserved(summary, failures)
        note = box.notifications()[job]
        assert "FAILED" in note["subject"]
        assert box.emulator.calls == []
        # The lock table holds no source lock afterwards.
        import boto3

        table = box.outputs["lock_table"]
        items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=table)["Items"]
        assert not [i for i in items if i["pk"]["S"].startswith("source#")]


def test_crash_after_kendra_and_faults_still_account_for_everything(tmp_path):
    """Handlers dying after Kendra accepted a call, throttling and InternalError: nothing lost."""
    folder = make_job(tmp_path, "faults-1", docs(60))
    options = SandboxOptions(timeout_seconds=120, option="sfn", crash_after_kendra=0.3, kendra_throttle=0.2,
                             kendra_internal_error=0.1, seed=3)
    with Sandbox(options) as box:
        job = box.submit(folder)
        box.wait([job])
        summary, failures = box.report(job)
        assert_conserved(summary, failures)
        failed = {r["documentId"]: r["errorCode"] for r in rows(failures)}
        index = box.emulator.index_snapshot()["documents"]
        wanted = {f"d-{i:03d}" for i in range(60)}
        # Every document is either in the index or reported; what is reported was really not put.
        assert wanted <= set(index) | set(failed)
        assert not set(failed) & set(index), "a document reported failed must not be in the index"
        assert summary["documents"]["put"] == len(wanted - set(failed))
        assert set(failed.values()) <= {"SimulatedCrash", "RetriesExhausted", "InternalError"}
        crashed = [i for i in box.runtime.invocations if i.error_type == "SimulatedCrash"]
        assert crashed, "the run should have crashed some handlers"
        # A crashed part is retried: more parts succeeded than the attempts that survived without a crash.
        assert summary["documents"]["put"] > 0
        assert any(c["outcome"] == "throttled" for c in box.emulator.calls)


def test_data_source_sync_job_wraps_the_job(tmp_path):
    folder = make_job(tmp_path, "sync-1", docs(12), deletes=["gone-1"])
    config = {"kendraDataSourceId": "custom-source-1"}
    with Sandbox(SandboxOptions(timeout_seconds=120, option="sfn", config=config)) as box:
        job = box.submit(folder)
        box.wait([job])
        summary, failures = box.report(job)
        assert_conserved(summary, failures)
        assert summary["documents"]["put"] == 12
        import boto3

        kendra = boto3.client("kendra", region_name="us-east-1")
        history = kendra.list_data_source_sync_jobs(Id="custom-source-1", IndexId=box.outputs["kendra_index_id"])
        (run,) = history["History"]
        assert run["Status"] in {"SYNCING_INDEXING", "SUCCEEDED"}  # stopped by the job's end
        index = box.emulator.index_snapshot()["documents"]
        assert index["d-000"]["attributes"]["_data_source_sync_job_execution_id"] == {
            "StringValue": run["ExecutionId"]}


def test_the_same_job_id_again_is_a_new_run_with_its_own_report(tmp_path):
    """A re-upload reuses nothing of the previous run's work state (plan, part results, verification)."""
    first = make_job(tmp_path / "a", "again-1", {"bad-1.txt": (b"caf\xe9", {"Title": "x"}),
                                               "bad-2.txt": (b"cr\xe8me", {"Title": "y"})})
    second = make_job(tmp_path / "b", "again-1", {"good.txt": ("fine", {"Title": "z"})})
    with Sandbox(SandboxOptions(timeout_seconds=120, option="sfn")) as box:
        box.wait([box.submit(first)])
        summary, failures = box.report("again-1")
        assert summary["documents"] == {"requested": 2, "put": 0, "skippedUnchanged": 0, "failed": 2, "excluded": 0}
        box.wait([box.submit(second)])
        summary, failures = box.report("again-1")
        assert_conserved(summary, failures)
        assert summary["documents"] == {"requested": 1, "put": 1, "skippedUnchanged": 0, "failed": 0, "excluded": 0}
        assert rows(failures) == []


def test_an_aborted_execution_still_gets_its_report_and_releases_its_source(tmp_path):
    """A Catch never runs on abort: the status-change rule ends the job (report, notification, lock)."""
    import time

    import boto3

    folder = make_job(tmp_path, "aborted-1", docs(6))
    with Sandbox(SandboxOptions(timeout_seconds=120, option="sfn", indexing_delay_seconds=2.0)) as box:
        job = box.submit(folder)
        (execution,) = box.delivery.executions()
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        deadline = time.monotonic() + 60
        while not any(e.get("stateEnteredEventDetails", {}).get("name") == "VerifyIndexing"
                      for e in sfn.get_execution_history(executionArn=execution)["events"]):
            assert time.monotonic() < deadline, "the execution never reached VerifyIndexing"
            time.sleep(0.02)
        sfn.stop_execution(executionArn=execution)
        box.wait([job])
        summary, failures = box.report(job)
        assert_conserved(summary, failures)
        assert summary["status"] == "FAILED" and "ABORTED" in summary["error"]
        # Kendra accepted all six; whatever verification had not confirmed when the execution stopped is
        # IndexingUnconfirmed, not put (the abort may land before or after its first round).
        unconfirmed = [r for r in rows(failures) if r["errorCode"] == "IndexingUnconfirmed"]
        assert summary["documents"]["put"] + len(unconfirmed) == 6
        assert summary["documents"]["failed"] == len(unconfirmed)
        assert "FAILED" in box.notifications()[job]["subject"]
        items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=box.outputs["lock_table"])["Items"]
        assert not [i for i in items if i["pk"]["S"].startswith("source#")]


def test_indexing_not_confirmed_in_the_window_is_a_failure_and_resent(tmp_path):
    check_indexing_unconfirmed("sfn", tmp_path)


def test_a_full_index_stops_the_job_sending_and_reports_what_was_not_sent(tmp_path):
    check_index_full("sfn", tmp_path)


def test_a_connector_layout_bucket_gives_what_the_connector_gives_and_full_sync_deletes(tmp_path):
    with Sandbox(SandboxOptions(timeout_seconds=120, option="sfn")) as box:
        check_connector_jobs(run_connector_jobs(box, tmp_path))


@pytest.fixture(scope="module")
def tenancy_run(tmp_path_factory):
    options = SandboxOptions(timeout_seconds=120, option="sfn", seed=1, config={"sources": TENANCY_SOURCES})
    with Sandbox(options) as box:
        return run_tenancy(box, tmp_path_factory.mktemp("tenancy"))


def test_tenancy_one_source_cannot_overwrite_or_delete_anothers_documents(tenancy_run):
    check_one_source_cannot_touch_anothers_documents(tenancy_run)


def test_tenancy_a_manifest_outside_its_sources_prefix_fails_and_sends_nothing(tenancy_run):
    check_manifests_outside_their_prefix_fail(tenancy_run)


def test_tenancy_the_owner_may_delete_its_document(tenancy_run):
    check_the_owner_may_delete(tenancy_run)
