"""The hostile-input corpus (tests/data/hostile/cases.py) end to end, through both options.

One deployed stack per option runs two kinds of job at once: one job holding every document case (each
document with its own expected outcome), and one small job per manifest-level case. Every case must end
with its expected code and a message naming the problem, nothing lost (the summary's equalities), and
nothing sent to Kendra that the pipeline itself should have refused.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from sandbox.run import Sandbox, SandboxOptions
from tests.data.hostile.cases import (
    DOCUMENT_CASES,
    INDEX_FIELDS,
    JOB_CASES,
    STACK_CONFIG,
    DocumentCase,
    JobCase,
    document_job,
    document_outcomes,
    write_files,
)
from tests.sandbox.conftest import assert_conserved, rows

DOCUMENT_JOB = "hostile-documents"


@pytest.fixture(scope="module", params=["sfn", "sqs"])
def corpus(request, tmp_path_factory) -> dict[str, Any]:
    """Every case submitted at once to one stack of the option; their reports, calls and index."""
    option = request.param
    root = tmp_path_factory.mktemp(f"hostile-{option}")
    options = SandboxOptions(option=option, timeout_seconds=180, index_fields=INDEX_FIELDS, config=STACK_CONFIG)
    with Sandbox(options) as box:
        document_job_id = box.submit(document_job(root / "documents", DOCUMENT_JOB))
        jobs = {case.name: box.submit(write_files(root / f"{n:02d}-{case.name}", case.files), prefix=case.prefix)
                for n, case in enumerate(JOB_CASES)}
        box.wait([document_job_id, *jobs.values()])
        notes = box.notifications()
        return {
            "option": option,
            "documents": box.report(document_job_id),
            "jobs": {name: (job_id, *box.report(job_id)) for name, job_id in jobs.items()},
            "calls": list(box.emulator.calls),
            "index": box.emulator.index_snapshot()["documents"],
            "notes": notes,
        }


def _sent_ids(calls: list[dict[str, Any]], operation: str = "BatchPutDocument") -> set[str]:
    return {i for c in calls if c["operation"] == operation for i in c["documentIds"]}


def _readable(message: str) -> None:
    """A failure message a person can act on: one line, no traceback, no raw Lambda error JSON."""
    assert message and "\n" not in message, message
    for noise in ("Traceback", "errorType", "stackTrace", 'File "', "ClientError", "a pipeline step failed"):
        assert noise not in message, message


# -- the document job -------------------------------------------------------------------------------------


def test_document_job_accounts_for_every_document(corpus):
    summary, failures = corpus["documents"]
    assert_conserved(summary, failures)
    outcomes = document_outcomes()
    failed = [o for o in outcomes if o.code is not None]
    assert summary["status"] == "COMPLETED_WITH_FAILURES", summary
    assert summary["documents"] == {"requested": len(outcomes), "put": len(outcomes) - len(failed),
                                    "skippedUnchanged": 0, "failed": len(failed), "excluded": 0}
    got = sorted((r["documentId"], r["errorCode"]) for r in rows(failures))
    assert got == sorted((o.document_id, o.code) for o in failed)
    for row in rows(failures):
        assert row["jobId"] == DOCUMENT_JOB
        _readable(row["errorMessage"])


def test_nothing_the_pipeline_refuses_reaches_kendra(corpus):
    outcomes = document_outcomes()
    may_send = {o.document_id for o in outcomes if o.sent}
    refused = {o.document_id for o in outcomes if o.code is not None} - may_send
    sent = _sent_ids(corpus["calls"])
    assert not refused & sent, refused & sent
    assert not refused & set(corpus["index"])
    assert all(len(c["documentIds"]) <= 10 for c in corpus["calls"])
    # No call failed as a whole: one hostile document never takes its neighbours down with it.
    assert {c["outcome"] for c in corpus["calls"]} == {"ok"}, [c for c in corpus["calls"] if c["outcome"] != "ok"]


@pytest.mark.parametrize("case", DOCUMENT_CASES, ids=[case.name for case in DOCUMENT_CASES])
def test_document_case(corpus, case: DocumentCase):
    _, failures = corpus["documents"]
    by_id: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows(failures):
        by_id[row["documentId"]].append(row)
    index = corpus["index"]
    for outcome in case.outcomes:
        if outcome.code is None:
            assert outcome.document_id in index, sorted(index)[:5]
            assert index[outcome.document_id]["status"] in ("INDEXED", "UPDATED"), index[outcome.document_id]
            if not [o for o in case.outcomes if o.document_id == outcome.document_id and o.code]:
                assert by_id[outcome.document_id] == [], by_id[outcome.document_id]
            continue
        matching = [r for r in by_id[outcome.document_id] if r["errorCode"] == outcome.code]
        assert len(matching) == 1, (outcome, by_id[outcome.document_id])
        assert outcome.message in matching[0]["errorMessage"], matching[0]["errorMessage"]
        if not any(o.code is None for o in case.outcomes if o.document_id == outcome.document_id):
            assert index.get(outcome.document_id, {}).get("status") in (None, "FAILED"), index[outcome.document_id]


# -- jobs of their own ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", JOB_CASES, ids=[case.name for case in JOB_CASES])
def test_job_case(corpus, case: JobCase):
    job_id, summary, failures = corpus["jobs"][case.name]
    assert_conserved(summary, failures)
    assert (job_id == case.name) == (case.job_id is not None), job_id
    assert summary["jobId"] == job_id and summary["option"] == corpus["option"]
    assert summary["status"] == case.status, summary
    document_id = f"{case.name}-doc"
    if case.error is not None:
        assert case.error in summary["error"], summary["error"]
        _readable(summary["error"])
        assert rows(failures) == []
        assert summary["documents"]["requested"] == summary["deletes"]["requested"] == 0, summary
        assert document_id not in _sent_ids(corpus["calls"]) and document_id not in corpus["index"]
        assert "FAILED" in corpus["notes"][job_id]["subject"]
    else:
        assert "error" not in summary, summary
        if case.indexed:
            assert corpus["index"][document_id]["status"] == "INDEXED"
        else:
            assert document_id not in _sent_ids(corpus["calls"]) and document_id not in corpus["index"]
    assert summary["documents"] == {**summary["documents"], **case.documents}
    assert summary["deletes"] == {**summary["deletes"], **case.deletes}
    got = sorted((r["documentId"], r["errorCode"], r["errorMessage"]) for r in rows(failures))
    expected = sorted(case.rows)
    assert [(d, c) for d, c, _ in got] == [(d, c) for d, c, _ in expected], got
    for (_, _, message), (_, _, fragment) in zip(got, expected, strict=True):
        assert fragment in message, message
        _readable(message)
