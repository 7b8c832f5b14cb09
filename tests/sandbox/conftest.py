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


def check_index_full(option: str, root: Path) -> None:
    """An index at its document capacity: the parts it refuses and every part after them fail
    ``ServiceQuotaExceededException`` saying they were not sent, and the job stops calling Kendra."""
    from sandbox.run import Sandbox, SandboxOptions

    docs = {f"cap-{i:03d}.txt": (f"body {i}", {"Title": f"cap {i}"}) for i in range(100)}
    folder = make_job(root, "cap-1", docs)
    with Sandbox(SandboxOptions(timeout_seconds=120, option=option, index_capacity=15)) as box:
        job = box.submit(folder)
        box.wait([job])
        summary, failures = box.report(job)
        assert_conserved(summary, failures)
        assert summary["status"] == "COMPLETED_WITH_FAILURES"
        held = box.emulator.index_snapshot()["documents"]
        assert summary["documents"]["put"] == len(held) == 10  # one part of 10 fits; the next would not
        assert {r["errorCode"] for r in rows(failures)} == {"ServiceQuotaExceededException"}
        assert all(r["errorMessage"].startswith("not sent: ") and "capacity" in r["errorMessage"]
                   for r in rows(failures))
        assert not {r["documentId"] for r in rows(failures)} & set(held)
        puts = [c for c in box.emulator.calls if c["operation"] == "BatchPutDocument"]
        refused = [c for c in puts if c["outcome"] == "error"]
        # At most the parts already sending when the index filled are refused; the other parts send nothing.
        assert 1 <= len(refused) <= 4 and len(puts) <= 5, [(c["outcome"], len(c["documentIds"])) for c in puts]
