"""Shared helpers for the end-to-end tests: job folders built on the fly, and the invariants."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any


def make_job(root: Path, job_id: str, docs: dict[str, tuple[str | bytes, dict | None]], *,
             source: str | None = None, deletes: list[str] | None = None, **manifest: Any) -> Path:
    """A job folder: ``docs`` maps a key under batches/ to (body, metadata or None)."""
    folder = root / job_id
    for rel, (body, meta) in docs.items():
        path = folder / "batches" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body.encode() if isinstance(body, str) else body)
        if meta is not None:
            (path.parent / f"{path.name}.metadata.json").write_text(json.dumps(meta))
    body = {"schemaVersion": 1, "jobId": job_id, **manifest}
    if source:
        body["source"] = source
    if deletes:
        body["deletes"] = deletes
    (folder / "_control").mkdir(parents=True, exist_ok=True)
    (folder / "_control" / "manifest.json").write_text(json.dumps(body))
    return folder


def rows(failures: bytes) -> list[dict[str, str]]:
    text = failures.decode()
    assert text.startswith("jobId,documentId,errorCode,errorMessage\r\n")
    return list(csv.DictReader(io.StringIO(text)))


def assert_conserved(summary: dict[str, Any], failures: bytes) -> None:
    """DESIGN section 6: every document and delete is accounted for exactly once."""
    d, x = summary["documents"], summary["deletes"]
    assert d["requested"] == d["put"] + d["skippedUnchanged"] + d["failed"], summary
    assert x["requested"] == x["deleted"] + x["failed"], summary
    assert len(rows(failures)) == d["failed"] + x["failed"], summary


# -- the sample job scenario, shared by both options ---------------------------------------------------

SAMPLE = Path(__file__).resolve().parents[2] / "sample"
#: The sample's failure kinds (DocumentTooLarge needs the 64 KiB limit the sample runs use).
SAMPLE_FAILURE_CODES = ("MissingMetadata", "MissingDocument", "InvalidMetadata", "DuplicateDocumentId",
                        "ConflictingOperation", "DocumentTooLarge", "InvalidRequest", "IndexingFailed")


def puts_of(calls: list[dict[str, Any]]) -> list[str]:
    """Document ids Kendra accepted a BatchPutDocument call for."""
    return [i for c in calls if c["operation"] == "BatchPutDocument" and c["outcome"] == "ok" for i in c["documentIds"]]


def run_sample_twice(box: Any, out: Path) -> dict[str, Any]:
    """The sample job, then the same folder again (nothing changed); what the tests look at."""
    first = box.submit(SAMPLE / "job")
    box.wait([first])
    summary1, failures1 = box.report(first)
    calls_before, reads_before = len(box.emulator.calls), len(box.s3_reads)
    second = box.submit(SAMPLE / "job")
    box.wait([second])
    summary2, failures2 = box.report(second)
    box.write_outputs(out, [first])
    return {
        "summary": summary1, "failures": failures1, "rerun": summary2, "rerun_failures": failures2,
        "rerun_calls": box.emulator.calls[calls_before:], "rerun_reads": box.s3_reads[reads_before:],
        "out": out, "job": first, "notes": box.notifications(), "index": box.emulator.index_snapshot(),
    }


def check_sample_accounted(run: dict[str, Any], option: str) -> None:
    summary, failures = run["summary"], run["failures"]
    assert_conserved(summary, failures)
    assert summary["option"] == option and summary["status"] == "COMPLETED_WITH_FAILURES"
    codes = {r["errorCode"] for r in rows(failures)}
    assert set(SAMPLE_FAILURE_CODES) <= codes, set(SAMPLE_FAILURE_CODES) - codes
    assert summary["deletes"]["deleted"] == 3  # unknown ids count as deleted
    assert summary["documents"]["put"] >= 30
    assert run["index"]["documents"]["emp-101"]["status"] == "INDEXED"


def check_sample_outputs(run: dict[str, Any], option: str) -> None:
    folder = run["out"] / run["job"]
    for name in ("failures.csv", "summary.json", "notification.json"):
        assert (folder / name).is_file()
    calls = json.loads((run["out"] / "calls.json").read_text())
    assert {c["operation"] for c in calls} >= {"BatchPutDocument", "BatchDeleteDocument"}
    assert all(len(c["documentIds"]) <= 10 for c in calls)
    note = json.loads((folder / "notification.json").read_text())
    assert run["job"] in note["subject"]
    assert note["summary"]["jobId"] == run["job"] and note["summary"]["option"] == option


def check_unchanged_rerun(run: dict[str, Any]) -> None:
    """Only the documents that failed last time are sent and read again; nothing that was put."""
    assert_conserved(run["rerun"], run["rerun_failures"])
    failed_before = {r["documentId"] for r in rows(run["failures"])}
    resent = set(puts_of(run["rerun_calls"]))
    assert resent <= failed_before, resent - failed_before
    bodies = {k.split("/batches/", 1)[1].rsplit(".", 1)[0] for k in run["rerun_reads"]
              if "/batches/" in k and not k.endswith(".metadata.json")}
    assert bodies <= failed_before, bodies - failed_before
    assert run["rerun"]["documents"]["skippedUnchanged"] >= 29  # the IndexingFailed one is re-sent


def check_indexing_unconfirmed(option: str, root: Path) -> None:
    """Documents Kendra has not confirmed when the verification window ends are ``IndexingUnconfirmed``
    failures, not puts, and the next job sends them again instead of skipping them as unchanged."""
    from sandbox.run import Sandbox, SandboxOptions

    docs = {f"slow-{i}.txt": (f"body {i}", {"Title": f"slow {i}"}) for i in range(3)}
    folder = make_job(root, "slow-1", docs)
    options = SandboxOptions(timeout_seconds=120, option=option, indexing_delay_seconds=30.0,
                             config={"verifyTimeoutSeconds": 1})
    with Sandbox(options) as box:
        job = box.submit(folder)
        box.wait([job])
        summary, failures = box.report(job)
        assert_conserved(summary, failures)
        assert summary["status"] == "COMPLETED_WITH_FAILURES"
        assert summary["documents"]["put"] == 0 and summary["documents"]["failed"] == 3
        assert {r["errorCode"] for r in rows(failures)} == {"IndexingUnconfirmed"}
        assert all("next job sends it again" in r["errorMessage"] for r in rows(failures))
        assert summary["indexing"] == {"verified": 0, "unconfirmed": 3}

        box.emulator.indexing_delay_seconds = 0.0
        calls = len(box.emulator.calls)
        again = box.submit(folder)
        box.wait([again])
        summary, failures = box.report(again)
        assert_conserved(summary, failures)
        assert summary["status"] == "SUCCEEDED", rows(failures)
        assert summary["documents"]["put"] == 3 and summary["documents"]["skippedUnchanged"] == 0
        assert sorted(puts_of(box.emulator.calls[calls:])) == sorted(d.removesuffix(".txt") for d in docs)


# -- tenancy: registered sources, shared by both options -------------------------------------------------

TENANCY_SOURCES = {"hr": "teams/hr", "fin": "teams/fin"}


def _titled(names: list[str], owner: str) -> dict[str, tuple[str, dict]]:
    return {f"{n}.txt": (f"{owner} wrote {n}", {"Title": f"{n} by {owner}"}) for n in names}


def run_tenancy(box: Any, root: Path) -> dict[str, Any]:
    """Two registered sources: hr indexes two documents; fin then tries to overwrite one and delete the
    other; a manifest outside its source's prefix and one naming an unregistered source; hr deletes its own."""
    hr = box.submit(make_job(root, "hr-1", _titled(["hr-a", "hr-b"], "hr")), prefix="teams/hr/001")
    box.wait([hr])
    calls = len(box.emulator.calls)
    fin = box.submit(make_job(root, "fin-1", _titled(["hr-a", "fin-a"], "fin"), deletes=["hr-b"]),
                     prefix="teams/fin/001")
    box.wait([fin])
    fin_calls = box.emulator.calls[calls:]
    index_after_fin = box.emulator.index_snapshot()["documents"]
    calls = len(box.emulator.calls)
    misplaced = box.submit(make_job(root, "fin-2", _titled(["fin-b"], "fin"), deletes=["hr-a"]),
                           prefix="teams/hr/002")
    unregistered = box.submit(make_job(root, "ops-1", _titled(["ops-a"], "ops")), prefix="teams/ops")
    box.wait([misplaced, unregistered])
    refused_calls = box.emulator.calls[calls:]
    own = box.submit(make_job(root, "hr-2", {}, deletes=["hr-b"]), prefix="teams/hr/003")
    box.wait([own])
    return {
        "reports": {job: box.report(job) for job in (hr, fin, misplaced, unregistered, own)},
        "fin_calls": fin_calls, "index_after_fin": index_after_fin, "refused_calls": refused_calls,
        "index": box.emulator.index_snapshot()["documents"],
    }


def check_one_source_cannot_touch_anothers_documents(run: dict[str, Any]) -> None:
    reports = run["reports"]
    for summary, failures in reports.values():
        assert_conserved(summary, failures)
    summary, _ = reports["hr-1"]
    assert summary["status"] == "SUCCEEDED" and summary["documents"]["put"] == 2
    summary, failures = reports["fin-1"]
    assert summary["status"] == "COMPLETED_WITH_FAILURES", summary
    assert summary["documents"] == {**summary["documents"], "requested": 2, "put": 1, "failed": 1}
    assert summary["deletes"] == {**summary["deletes"], "requested": 1, "deleted": 0, "failed": 1}
    assert sorted((r["documentId"], r["errorCode"]) for r in rows(failures)) == [
        ("hr-a", "ForeignDocument"), ("hr-b", "ForeignDocument")]
    sent = [i for c in run["fin_calls"] for i in c["documentIds"]]
    assert "hr-a" not in sent and "hr-b" not in sent and "fin-a" in sent
    index = run["index_after_fin"]
    assert index["hr-a"]["title"] == "hr-a by hr" and "hr-b" in index and "fin-a" in index


def check_manifests_outside_their_prefix_fail(run: dict[str, Any]) -> None:
    reports = run["reports"]
    for job, detail in (("fin-2", "is not under teams/fin/"), ("ops-1", "source 'ops'")):
        summary, failures = reports[job]
        assert summary["status"] == "FAILED", summary
        assert detail in summary["error"] and "fin → teams/fin/, hr → teams/hr/" in summary["error"]
        assert rows(failures) == []
    assert run["refused_calls"] == []
    assert "fin-b" not in run["index"] and "ops-a" not in run["index"] and "hr-a" in run["index"]


def check_the_owner_may_delete(run: dict[str, Any]) -> None:
    summary, _ = run["reports"]["hr-2"]
    assert summary["status"] == "SUCCEEDED" and summary["deletes"]["deleted"] == 1
    assert "hr-b" not in run["index"]
