"""Tenancy (registered sources): the manifest's prefix, and ForeignDocument for another source's documents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kendra_ingest import job, plan, store, tenancy
from kendra_ingest.ledger import Ledger
from kendra_ingest.models import PartDoc

from tests.functions.sqs_world import World, make_world

SOURCES = {"hr": "teams/hr", "fin": "teams/fin"}
SOURCES_ENV = json.dumps(SOURCES)


def a_job(prefix: str, source: str, error: str | None = None) -> job.Job:
    return job.Job(job_id=f"{source}-1", source=source, bucket="b", prefix=prefix,
                   manifest_key=f"{prefix}/_control/manifest.json", run_id="r", started_at="t", error=error)


def doc(document_id: str) -> PartDoc:
    return PartDoc(document_id=document_id, s3_bucket="b", s3_key=f"k/{document_id}.txt", meta_key="m")


# -- the manifest's place -------------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", ["teams/hr", "teams/hr/2025-10", "teams/hr/a/b/c"])
def test_a_manifest_under_its_source_prefix_runs(prefix: str) -> None:
    assert tenancy.check_job(a_job(prefix, "hr"), SOURCES).error is None


@pytest.mark.parametrize("prefix", ["teams/fin", "teams/hrx", "teams", "elsewhere/teams/hr", ""])
def test_a_manifest_outside_its_source_prefix_fails_listing_the_registered_prefixes(prefix: str) -> None:
    error = tenancy.check_job(a_job(prefix, "hr"), SOURCES).error
    assert error is not None
    assert "is not under teams/hr/, the prefix registered for source 'hr'" in error
    assert "fin → teams/fin/, hr → teams/hr/" in error and "nothing was sent" in error


def test_an_unregistered_source_fails_listing_the_registered_prefixes() -> None:
    error = tenancy.check_job(a_job("teams/hr/x", "ops"), SOURCES).error
    assert error is not None and "source 'ops'" in error and "is not registered" in error
    assert "fin → teams/fin/, hr → teams/hr/" in error


def test_without_sources_any_prefix_runs_and_an_earlier_error_wins() -> None:
    assert tenancy.check_job(a_job("anywhere", "ops"), None).error is None
    assert tenancy.check_job(a_job("anywhere", "ops"), {}).error is None
    assert tenancy.check_job(a_job("x", "ops", error="bad manifest"), SOURCES).error == "bad manifest"


# -- ownership --------------------------------------------------------------------------------------------

def test_screen_fails_puts_and_deletes_of_another_sources_documents() -> None:
    owners = {"mine": "hr", "theirs": "fin", "legacy": None}
    asked: list[list[str]] = []

    def lookup(ids: list[str]) -> dict[str, str | None]:
        asked.append(ids)
        return {i: owners[i] for i in ids if i in owners}

    docs, deletes, put_failures, delete_failures = tenancy.screen(
        [doc("new"), doc("mine"), doc("theirs"), doc("legacy")], ["mine", "theirs", "gone"], lookup, source="hr")
    assert asked == [["new", "mine", "theirs", "legacy", "gone"]]  # one lookup, each id once
    assert [d.document_id for d in docs] == ["new", "mine", "legacy"]
    assert deletes == ["mine", "gone"]
    assert [(f.document_id, f.error_code) for f in put_failures] == [("theirs", "ForeignDocument")]
    assert [(f.document_id, f.error_code) for f in delete_failures] == [("theirs", "ForeignDocument")]
    assert "belongs to source 'fin', not 'hr'" in put_failures[0].error_message


# -- through loading and planning (embedded S3 and DynamoDB) --------------------------------------------

@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(monkeypatch)


def plan_failures(world: World, loaded: job.Job) -> dict[str, Any]:
    return json.loads(world.s3.get_object(Bucket=world.settings().reports_bucket,
                                          Key=loaded.work_key("plan.json"))["Body"].read())


def test_load_checks_the_prefix_only_with_sources(world: World) -> None:
    event = world.upload("teams/fin/x", "hr-1", {"d1": "one"})
    assert job.load(event, store.read).error is None
    error = job.load(event, store.read, sources=SOURCES).error
    assert error is not None and "teams/hr/" in error


@pytest.mark.parametrize("skip_unchanged", ["true", "false"])
def test_planning_fails_foreign_documents_and_keeps_new_and_own_ones(world: World, skip_unchanged: str) -> None:
    Ledger(world.settings().documents_table).record_put([
        ("mine", "hr", "fp", "k", "old"), ("theirs", "fin", "fp", "k", "old"), ("fin-doc", "fin", "fp", "k", "old")])
    event = world.upload("teams/hr/1", "hr-1", {"new": "n", "mine": "m", "theirs": "t"},
                         deletes=["fin-doc", "mine-gone"])
    loaded = job.load(event, store.read, sources=SOURCES)
    settings = world.settings(SOURCES=SOURCES_ENV, SKIP_UNCHANGED=skip_unchanged)
    result, parts = plan.plan_job(loaded, settings)
    puts = sorted(d.document_id for p in parts for d in getattr(p, "docs", ()))
    deletes = [i for p in parts for i in getattr(p, "document_ids", ())]
    assert result.error is None and puts == ["mine", "new"] and deletes == ["mine-gone"]
    saved = plan_failures(world, loaded)
    assert [(f["documentId"], f["errorCode"]) for f in saved["failures"]] == [("theirs", "ForeignDocument")]
    assert [(f["documentId"], f["errorCode"]) for f in saved["deleteFailures"]] == [("fin-doc", "ForeignDocument")]


def test_without_sources_planning_sends_everything_as_before(world: World) -> None:
    Ledger(world.settings().documents_table).record_put([("theirs", "fin", "fp", "k", "old")])
    event = world.upload("anywhere", "hr-2", {"theirs": "t"}, deletes=["theirs-too"])
    _, parts = plan.plan_job(job.load(event, store.read), world.settings())
    assert [d.document_id for p in parts for d in getattr(p, "docs", ())] == ["theirs"]


def test_the_ownership_lookup_also_answers_unchanged(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    event = world.upload("teams/hr/2", "hr-3", {"a": "one", "b": "two"})
    loaded = job.load(event, store.read, sources=SOURCES)
    settings = world.settings(SOURCES=SOURCES_ENV)
    plan.plan_job(loaded, settings)  # nothing recorded yet: both are new
    reads: list[int] = []
    real = Ledger.entries
    monkeypatch.setattr(Ledger, "entries", lambda self, ids: reads.append(1) or real(self, ids))
    plan.plan_job(loaded, settings)
    assert len(reads) == 1


# -- right before a part is sent ------------------------------------------------------------------------

class FakeIndex:
    def __init__(self) -> None:
        from kendra_ingest.models import KendraCounts

        self.counts = KendraCounts()
        self.sent: list[str] = []

    def put(self, documents: list[dict], *, deadline: Any) -> list[Any]:
        from kendra_ingest.models import Outcome

        self.sent += [d["Id"] for d in documents]
        return [Outcome(document_id=d["Id"], operation="put", status="put") for d in documents]

    def delete(self, ids: list[str], *, deadline: Any) -> list[Any]:
        from kendra_ingest.models import Outcome

        self.sent += ids
        return [Outcome(document_id=i, operation="delete", status="deleted") for i in ids]


class FakeLedger:
    def __init__(self) -> None:
        self.puts: list[tuple] = []
        self.deletes: list[str] = []

    def record_put(self, items: list[tuple]) -> None:
        self.puts += items

    def record_delete(self, ids: list[str]) -> None:
        self.deletes += ids


def test_a_part_skips_documents_another_source_claimed_since_planning() -> None:
    from kendra_ingest import parts
    from kendra_ingest.models import PutPart

    reads: list[str] = []

    def read(bucket: str, key: str) -> bytes:
        reads.append(key)
        return b'{"Title": "t"}' if key.endswith(".metadata.json") else b"body"

    part = PutPart(job_id="hr-1", part=1, docs=[
        PartDoc(document_id=i, s3_bucket="b", s3_key=f"k/{i}.txt", meta_key=f"k/{i}.txt.metadata.json")
        for i in ("a", "claimed", "c")])
    index, book = FakeIndex(), FakeLedger()
    result = parts.process_put(part, source="hr", index=index, ledger=book, deadline=None, document_mode="inline",
                               date_fields=frozenset(), read=read, owners=lambda ids: {"claimed": "fin", "a": "hr"})
    assert index.sent == ["a", "c"] and not [k for k in reads if "claimed" in k]
    assert [(o.document_id, o.status, o.error_code) for o in result.outcomes] == [
        ("a", "put", None), ("claimed", "failed", "ForeignDocument"), ("c", "put", None)]
    assert [p[0] for p in book.puts] == ["a", "c"]


def test_a_delete_part_leaves_another_sources_document_alone() -> None:
    from kendra_ingest import parts
    from kendra_ingest.models import DeletePart

    part = DeletePart(job_id="hr-1", part=2, document_ids=["mine", "theirs"])
    index, book = FakeIndex(), FakeLedger()
    result = parts.process_delete(part, index=index, ledger=book, deadline=None, source="hr",
                                  owners=lambda ids: {"theirs": "fin"})
    assert index.sent == ["mine"] and book.deletes == ["mine"]
    assert [(o.document_id, o.status, o.error_code) for o in result.outcomes] == [
        ("mine", "deleted", None), ("theirs", "failed", "ForeignDocument")]
    everything = parts.process_delete(DeletePart(job_id="hr-1", part=3, document_ids=["theirs"]), index=index,
                                      ledger=book, deadline=None, source="hr", owners=lambda ids: {"theirs": "fin"})
    assert index.sent == ["mine"] and everything.outcomes[0].error_code == "ForeignDocument"  # no empty call
