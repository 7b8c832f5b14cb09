"""Verification of indexing (kendra_ingest.verify), with S3 in moto and a scripted index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kendra_ingest import aws, store
from kendra_ingest.deadline import Deadline
from kendra_ingest.job import Job
from kendra_ingest.models import ErrorCode, KendraCounts
from kendra_ingest.verify import put_ids, verify
from moto import mock_aws

BUCKET = "reports"
JOB = Job(job_id="hr-1", source="hr", bucket="ingest", prefix="p", manifest_key="p/_control/manifest.json",
          run_id="r1", started_at="2026-01-01T00:00:00+00:00")


class Index:
    """Answers BatchGetDocumentStatus from a script: ``{id: [status of round 1, round 2, ...]}``."""

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = script
        self.rounds = 0
        self.counts = KendraCounts()
        self.asked: list[list[str]] = []

    def status(self, ids: list[str], *, deadline: Any) -> dict[str, tuple[str, str | None, str | None]]:
        self.asked.append(list(ids))
        self.counts = KendraCounts(status_calls=1)
        answers = {}
        for document_id in ids:
            statuses = self.script.get(document_id, ["NOT_FOUND"])
            status = statuses[min(self.rounds, len(statuses) - 1)]
            if status != "UNANSWERED":
                answers[document_id] = (status, "BadContent" if "FAILED" in status else None, "why")
        self.rounds += 1
        return answers


class Ledger:
    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def forget(self, ids: list[str]) -> int:
        self.forgotten.extend(ids)
        return len(ids)


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield
    aws.reset_clients()


def put_result(part: int, ids: list[str], failed: tuple[str, ...] = ()) -> None:
    outcomes = [{"documentId": i, "status": "failed" if i in failed else "put"} for i in ids]
    store.write_json(BUCKET, JOB.work_key(f"results/put-{part:05d}.json"), {"outcomes": outcomes})


def round_(index: Index, ledger: Ledger, now: float, *, timeout: float = 60, last: bool = False) -> Any:
    return verify(JOB, reports_bucket=BUCKET, index=index, ledger=ledger, deadline=Deadline(600),
                  timeout=timeout, now=now, last=last)


def test_put_ids_are_the_put_outcomes_of_every_part(reports: None) -> None:
    put_result(1, ["a", "b"], failed=("b",))
    put_result(2, ["c"])
    assert sorted(put_ids(BUCKET, JOB)) == ["a", "c"]


def test_confirmed_failed_and_waiting_documents(reports: None) -> None:
    put_result(1, ["ok", "bad", "slow", "updated"])
    index = Index({"ok": ["INDEXED"], "bad": ["FAILED"], "slow": ["PROCESSING", "INDEXED"],
                   "updated": ["UPDATED"]})
    ledger = Ledger()
    first = round_(index, ledger, now=1000)
    assert not first.done and first.pending == ["slow"] and first.verified == 2
    assert [(f.document_id, f.error_code) for f in first.failures] == [("bad", ErrorCode.INDEXING_FAILED)]
    assert "BadContent" in first.failures[0].error_message
    assert ledger.forgotten == ["bad"]
    second = round_(index, ledger, now=1010)
    assert second.done and second.pending == [] and second.verified == 3
    assert index.asked[-1] == ["slow"], "a later round asks only about the documents still pending"
    assert second.kendra.status_calls == 2


def test_documents_unconfirmed_when_the_window_passes_are_failures_and_forgotten(reports: None) -> None:
    put_result(1, ["slow", "unknown", "silent", "ok"])
    index = Index({"slow": ["PROCESSING"], "ok": ["INDEXED"], "silent": ["UNANSWERED"]})
    ledger = Ledger()
    assert not round_(index, ledger, now=1000, timeout=30).done
    state = round_(index, ledger, now=1031, timeout=30)
    assert state.done and state.pending == []
    codes = {f.document_id: f.error_code for f in state.failures}
    assert codes == dict.fromkeys(["slow", "unknown", "silent"], ErrorCode.INDEXING_UNCONFIRMED)
    messages = {f.document_id: f.error_message for f in state.failures}
    assert "PROCESSING" in messages["slow"] and "31 s" in messages["slow"]
    assert "did not know it yet" in messages["unknown"]
    assert "had not confirmed it" in messages["silent"]
    assert "next job sends it again" in messages["slow"]
    # Forgotten, so the next job does not skip them as unchanged.
    assert sorted(ledger.forgotten) == ["silent", "slow", "unknown"]


def test_the_callers_last_round_gives_up_inside_the_window(reports: None) -> None:
    put_result(1, ["slow"])
    state = round_(Index({"slow": ["PROCESSING"]}), Ledger(), now=1000, timeout=900, last=True)
    assert state.done and [f.error_code for f in state.failures] == [ErrorCode.INDEXING_UNCONFIRMED]


def test_a_finished_verification_is_not_repeated(reports: None) -> None:
    put_result(1, ["ok"])
    index = Index({"ok": ["INDEXED"]})
    assert round_(index, Ledger(), now=1000).done
    again = round_(index, Ledger(), now=1001)
    assert again.done and again.verified == 1 and len(index.asked) == 1


def test_nothing_put_is_done_at_once_without_a_call(reports: None) -> None:
    index = Index({})
    state = round_(index, Ledger(), now=1000)
    assert state.done and state.verified == 0 and index.asked == []
