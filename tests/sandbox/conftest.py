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
    """Every document and delete is accounted for exactly once (the summary's equalities)."""
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
    # Unchanged documents are skipped from the listing: not even their metadata is read again.
    metadata_read = [k for k in run["rerun_reads"] if k.endswith(".metadata.json")]
    assert len(metadata_read) <= len(failed_before), metadata_read
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


# -- a bucket laid out for the Kendra S3 connector, shared by both options ----------------------------

CONNECTOR_ACL = [{"keyPrefix": "s3://old-connector-bucket/hr/",
                  "aclEntries": [{"Name": "hr-team", "Type": "GROUP", "Access": "ALLOW"}]}]
#: The connector's layout: documents anywhere under P, metadata under metadata/ (for some documents only),
#: an access control file, a draft the patterns exclude and a metadata file whose document is gone.
CONNECTOR_FILES: dict[str, Any] = {
    "hr/handbook.pdf": "%PDF-1.4 handbook",
    "metadata/hr/handbook.pdf.metadata.json": {"DocumentId": "hr-handbook", "Title": "Handbook",
                                               "Attributes": {"_category": "hr"}},
    "hr/leave.txt": "休暇の規程",
    "hr/policy.md": "# policy",
    "metadata/hr/policy.md.metadata.json": {"AccessControlList": [{"Name": "ceo", "Type": "USER", "Access": "ALLOW"}]},
    "notes/todo.txt": "メモ",
    "public/news.html": "<p>news</p>",
    "metadata/public/news.html.metadata.json": {"Title": "News", "Attributes": {"_language_code": "en"}},
    "drafts/wip.txt": "not yet",
    "metadata/orphan.txt.metadata.json": {"DocumentId": "orphan-doc"},
    "acl/s3-acl.json": CONNECTOR_ACL,
}
CONNECTOR_MANIFEST = {"source": "conn", "documentsPrefix": "", "metadataPrefix": "metadata/",
                      "metadataRequired": False, "accessControlKey": "acl/s3-acl.json", "exclude": ["drafts/**"],
                      "languageCode": "ja"}


def make_tree_job(root: Path, job_id: str, files: dict[str, Any], **manifest: Any) -> Path:
    """A job folder holding ``files`` (key under P -> text, or JSON value) exactly where they are named."""
    folder = root / job_id
    for rel, body in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body if isinstance(body, str) else json.dumps(body), encoding="utf-8")
    (folder / "_control").mkdir(parents=True, exist_ok=True)
    (folder / "_control" / "manifest.json").write_text(json.dumps({"schemaVersion": 1, "jobId": job_id, **manifest}))
    return folder


def run_connector_jobs(box: Any, root: Path) -> dict[str, Any]:
    """The connector bucket (a full sync of a source with nothing indexed yet), then a full sync after
    notes/todo.txt was deleted, then a full sync of an almost empty prefix (the mass-delete guard)."""
    first = box.submit(make_tree_job(root, "conn-1", CONNECTOR_FILES, **CONNECTOR_MANIFEST, mode="full"))
    box.wait([first])
    index_after_first = box.emulator.index_snapshot()
    remaining = {k: v for k, v in CONNECTOR_FILES.items() if k != "notes/todo.txt"}
    second = box.submit(make_tree_job(root, "conn-2", remaining, **CONNECTOR_MANIFEST, mode="full"))
    box.wait([second])
    calls_before = len(box.emulator.calls)
    almost_empty = {"hr/handbook.pdf": CONNECTOR_FILES["hr/handbook.pdf"], "acl/s3-acl.json": CONNECTOR_ACL}
    third = box.submit(make_tree_job(root, "conn-3", almost_empty, **CONNECTOR_MANIFEST, mode="full"))
    box.wait([third])
    return {"reports": [box.report(j) for j in (first, second, third)], "first_index": index_after_first,
            "index": box.emulator.index_snapshot(), "third_calls": box.emulator.calls[calls_before:]}


def check_connector_jobs(run: dict[str, Any]) -> None:
    """What the S3 connector would give for the same bucket, and full sync as its sync does."""
    (s1, f1), (s2, _), (s3, _) = run["reports"]
    for summary, failures in run["reports"]:
        assert_conserved(summary, failures)
    assert s1["status"] == "COMPLETED_WITH_FAILURES"
    assert s1["documents"] == {"requested": 6, "put": 5, "skippedUnchanged": 0, "failed": 1, "excluded": 1}
    assert [(r["documentId"], r["errorCode"]) for r in rows(f1)] == [("orphan-doc", "MissingDocument")]
    assert s1["deletes"]["fullSync"] == 0 and "no documents in the documents table" in s1["message"]
    docs = run["first_index"]["documents"]
    assert set(docs) == {"hr-handbook", "hr/leave", "hr/policy", "notes/todo", "public/news"}
    hr_team = CONNECTOR_ACL[0]["aclEntries"]
    assert docs["hr/leave"]["acl"] == hr_team and docs["hr-handbook"]["acl"] == hr_team
    assert docs["hr/policy"]["acl"] == [{"Name": "ceo", "Type": "USER", "Access": "ALLOW"}]  # its own list wins
    assert docs["notes/todo"]["acl"] == [] and docs["notes/todo"]["contentType"] == "PLAIN_TEXT"
    language = {i: d["attributes"]["_language_code"]["StringValue"] for i, d in docs.items()}
    assert language == {"hr-handbook": "ja", "hr/leave": "ja", "hr/policy": "ja", "notes/todo": "ja",
                        "public/news": "en"}
    assert docs["hr-handbook"]["title"] == "Handbook" and docs["hr-handbook"]["contentType"] == "PDF"

    assert s2["documents"] == {"requested": 5, "put": 0, "skippedUnchanged": 4, "failed": 1, "excluded": 1}
    assert s2["deletes"] == {"requested": 1, "deleted": 1, "failed": 0, "fullSync": 1}
    assert "notes/todo" not in run["index"]["documents"]

    assert s3["status"] == "FAILED" and "allowMassDelete" in s3["error"]
    assert run["third_calls"] == []  # nothing was sent
    assert set(run["index"]["documents"]) == {"hr-handbook", "hr/leave", "hr/policy", "public/news"}


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
