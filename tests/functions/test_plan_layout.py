"""make_plan with the manifest's layout keys and mode "full" (pure: objects and reads are in memory)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from kendra_ingest import parts, plan
from kendra_ingest.job import Job
from kendra_ingest.manifest import parse_manifest
from kendra_ingest.models import PutPart, SourceObject

BUCKET = "ingest"
ACL = [{"keyPrefix": "s3://connector-bucket/hr/", "aclEntries": [{"Name": "hr", "Type": "GROUP", "Access": "ALLOW"}]}]


class Bucket:
    """Objects under P by key relative to P: listings and reads as the planner sees them."""

    def __init__(self, files: dict[str, Any]) -> None:
        self.files = {f"P/{k}": (json.dumps(v) if isinstance(v, (dict, list)) else v).encode()
                      for k, v in files.items()}
        self.reads: list[str] = []

    def listing(self, prefix: str) -> list[SourceObject]:
        return [SourceObject(key=k, etag=hashlib.md5(v).hexdigest(), size=len(v))
                for k, v in sorted(self.files.items()) if k.startswith(prefix)]

    def read(self, bucket: str, key: str) -> bytes | None:
        self.reads.append(key)
        return self.files.get(key)


def run(files: dict[str, Any], *, inventory: list[str] | None = None, default_language: str | None = None,
        **manifest: Any) -> tuple[plan.Made, Bucket]:
    bucket = Bucket(files)
    body = {"schemaVersion": 1, "jobId": "team-1", **manifest}
    parsed = parse_manifest(json.dumps(body).encode())
    job = Job(job_id="team-1", source="team", bucket=BUCKET, prefix="P", manifest_key="P/_control/manifest.json",
              run_id="r", started_at="2025-10-05T12:00:00+00:00")
    layout = plan.Layout.of("P", parsed)
    made = plan.make_plan(
        job, parsed, bucket.listing(layout.documents), read=bucket.read, unchanged=None,
        max_document_bytes=10**6, max_request_bytes=10**7,
        metadata_objects=bucket.listing(layout.metadata_listing) if layout.metadata_listing else (),
        inventory=(lambda source: iter(inventory)) if inventory is not None else None,
        default_language_code=default_language,
    )
    return made, bucket


def put_docs(made: plan.Made) -> dict[str, Any]:
    return {d.document_id: d for p in made.parts if isinstance(p, PutPart) for d in p.docs}


def deleted(made: plan.Made) -> list[str]:
    return [i for p in made.parts if p.action == "delete" for i in p.document_ids]


CONNECTOR = {
    "hr/handbook.pdf": "pdf", "hr/secret/pay.txt": "pay", "news/today.html": "<p>x</p>", "readme.md": "# r",
    "metadata/hr/handbook.pdf.metadata.json": {"DocumentId": "handbook", "Title": "Handbook"},
    "metadata/news/today.html.metadata.json": {"Attributes": {"_language_code": "en"}},
    "metadata/gone.pdf.metadata.json": {"DocumentId": "named-by-metadata"},
    "acl.json": ACL, "_control/manifest.json": "{}",
}
LAYOUT = {"documentsPrefix": "", "metadataPrefix": "metadata/", "metadataRequired": False,
          "accessControlKey": "acl.json", "languageCode": "ja"}


def test_connector_layout_plans_every_document_under_p_once():
    made, _ = run(CONNECTOR, **LAYOUT)
    docs = put_docs(made)
    assert set(docs) == {"handbook", "hr/secret/pay", "news/today", "readme"}
    assert docs["handbook"].meta_key == "P/metadata/hr/handbook.pdf.metadata.json"
    assert docs["readme"].meta_key == "" and docs["readme"].language_code == "ja"
    assert docs["handbook"].acl == 0 and docs["hr/secret/pay"].acl == 0 and docs["readme"].acl is None
    (part,) = [p for p in made.parts if isinstance(p, PutPart)]
    assert part.access_key == "P/acl.json"
    assert part.access_digest == hashlib.sha256(json.dumps(ACL).encode()).hexdigest()
    # The lone metadata file's row carries the DocumentId it names.
    assert [(f.document_id, f.error_code) for f in made.failures] == [("named-by-metadata", "MissingDocument")]
    assert made.counts.documents_requested == 5 and made.counts.documents_found == 4


def test_metadata_required_by_default():
    made, _ = run(CONNECTOR, documentsPrefix="", metadataPrefix="metadata/", accessControlKey="acl.json")
    missing = {f.document_id for f in made.failures if f.error_code == "MissingMetadata"}
    assert missing == {"hr/secret/pay", "readme"}


def test_lone_metadata_without_a_readable_id_uses_the_default_id():
    made, _ = run({"batches/a.txt.metadata.json": "not json"})
    assert [(f.document_id, f.error_code) for f in made.failures] == [("a", "MissingDocument")]


def test_include_and_exclude_count_excluded_documents_which_are_neither_sent_nor_failed():
    made, bucket = run(CONNECTOR, **LAYOUT, include=["**/*.pdf", "**/*.txt", "*.md"], exclude=["hr/secret/**"])
    assert set(put_docs(made)) == {"handbook", "readme"}
    assert made.counts.documents_excluded == 2  # news/today.html and hr/secret/pay.txt
    assert "P/metadata/news/today.html.metadata.json" not in bucket.reads  # excluded: never read
    assert made.counts.documents_requested == 3  # the two documents and the lone metadata file


def test_language_code_of_the_manifest_wins_over_the_stack_default():
    made, _ = run({"batches/a.txt": "a", "batches/a.txt.metadata.json": {}}, default_language="de")
    assert put_docs(made)["a"].language_code == "de"
    made, _ = run({"batches/a.txt": "a", "batches/a.txt.metadata.json": {}}, default_language="de", languageCode="ja")
    assert put_docs(made)["a"].language_code == "ja"


def test_language_and_access_change_the_fingerprint():
    files = {"batches/a.txt": "a", "batches/a.txt.metadata.json": {}}
    plain = put_docs(run(files)[0])["a"].fingerprint
    assert put_docs(run(files, languageCode="ja")[0])["a"].fingerprint != plain
    assert put_docs(run(files, languageCode="ko")[0])["a"].fingerprint != put_docs(run(files, languageCode="ja")[0])[
        "a"].fingerprint


@pytest.mark.parametrize(("acl", "says"), [(None, "does not exist"), ("[{]", "is not valid JSON"),
                                           ([{"keyPrefix": "s3://b/"}], "aclEntries")])
def test_a_missing_or_bad_access_control_file_fails_the_job_before_anything_is_sent(acl, says):
    files = {k: v for k, v in CONNECTOR.items() if k != "acl.json"}
    if acl is not None:
        files["acl.json"] = acl
    made, _ = run(files, **LAYOUT)
    assert made.parts == [] and made.failures == []
    assert says in made.error and "nothing was sent" in made.error
    assert made.counts.documents_requested == 0


def test_worker_applies_the_access_control_entries_only_to_the_bytes_the_planner_checked():
    made, bucket = run(CONNECTOR, **LAYOUT)
    (part,) = [p for p in made.parts if isinstance(p, PutPart)]
    entries = parts.access_rules(part, read=bucket.read)
    assert entries == [ACL[0]["aclEntries"]]
    bucket.files["P/acl.json"] = b"[]"
    parts._ACCESS_CACHE.clear()
    assert parts.access_rules(part, read=bucket.read) == []
    built = parts._build(part.docs, "inline", frozenset(), bucket.read, [])
    by_id = {d.document_id: b for d, b in zip(part.docs, built, strict=True)}
    assert by_id["handbook"].error_code == "JobAborted"  # never sent without its ACL
    assert isinstance(by_id["readme"], dict) and "AccessControlList" not in by_id["readme"]


def test_worker_builds_documents_without_metadata_with_language_and_acl():
    made, bucket = run(CONNECTOR, **LAYOUT)
    (part,) = [p for p in made.parts if isinstance(p, PutPart)]
    parts._ACCESS_CACHE.clear()
    built = parts._build(part.docs, "inline", frozenset(), bucket.read, parts.access_rules(part, read=bucket.read))
    by_id = {d.document_id: b for d, b in zip(part.docs, built, strict=True)}
    assert by_id["readme"]["ContentType"] == "MD"
    assert by_id["readme"]["Attributes"] == [{"Key": "_language_code", "Value": {"StringValue": "ja"}}]
    assert by_id["handbook"]["AccessControlList"] == ACL[0]["aclEntries"]
    assert by_id["news/today"]["Attributes"] == [{"Key": "_language_code", "Value": {"StringValue": "en"}}]


# -- mode "full" -----------------------------------------------------------------------------------

FILES = {f"batches/d{i}.txt": f"{i}" for i in range(4)} | {f"batches/d{i}.txt.metadata.json": {} for i in range(4)}


def test_full_sync_deletes_the_sources_documents_absent_from_the_job():
    made, _ = run(FILES, inventory=["d0", "d1", "d2", "d3", "old-1"], mode="full", deletes=["x"])
    assert deleted(made) == ["x", "old-1"]
    assert (made.counts.deletes_requested, made.counts.full_sync_deletes) == (2, 1)


def test_full_sync_keeps_documents_that_the_job_names_but_fails():
    files = {**FILES, "batches/d3.txt.metadata.json": "broken"}
    made, _ = run(files, inventory=["d0", "d1", "d2", "d3"], mode="full")
    assert deleted(made) == [] and [f.document_id for f in made.failures] == ["d3"]


def test_incremental_mode_never_lists_the_inventory():
    made, _ = run(FILES, inventory=["old-1", "old-2"])
    assert deleted(made) == [] and made.counts.full_sync_deletes == 0


def test_full_sync_that_would_delete_more_than_half_fails_before_anything_is_sent():
    inventory = ["d0", *(f"old-{i}" for i in range(5))]
    made, _ = run(FILES, inventory=inventory, mode="full")
    assert made.parts == [] and "would delete 5 of the 6 documents" in made.error
    assert "allowMassDelete" in made.error
    assert made.counts.documents_requested == made.counts.deletes_requested == made.counts.full_sync_deletes == 0
    allowed, _ = run(FILES, inventory=inventory, mode="full", allowMassDelete=True)
    assert sorted(deleted(allowed)) == [f"old-{i}" for i in range(5)] and allowed.error is None


def test_exactly_half_is_not_a_mass_delete():
    made, _ = run(FILES, inventory=["d0", "d1", "old-1", "old-2"], mode="full")
    assert made.error is None and sorted(deleted(made)) == ["old-1", "old-2"]


def test_full_sync_of_a_source_with_no_entries_deletes_nothing_and_says_so():
    made, _ = run(FILES, inventory=[], mode="full")
    assert deleted(made) == [] and made.error is None
    assert made.notes and "no documents in the documents table" in made.notes[0]


def test_optional_metadata_in_the_default_layout():
    made, _ = run({"batches/a.txt": "a", "batches/b.txt": "b", "batches/b.txt.metadata.json": {"DocumentId": "B"}},
                  metadataRequired=False)
    docs = put_docs(made)
    assert set(docs) == {"a", "B"} and docs["a"].meta_key == "" and made.failures == []


def test_a_documents_prefix_of_its_own_with_metadata_beside_the_documents():
    made, _ = run({"docs/a.txt": "a", "docs/a.txt.metadata.json": {}, "batches/x.txt": "x", "deletes.txt": "gone"},
                  documentsPrefix="docs", deletesKey="deletes.txt")
    assert set(put_docs(made)) == {"a"} and deleted(made) == ["gone"]


def test_a_document_without_metadata_and_without_a_known_extension_fails_invalid_metadata():
    made, bucket = run({"img/logo.png": "png"}, documentsPrefix="", metadataRequired=False)
    (part,) = made.parts
    (built,) = parts._build(part.docs, "inline", frozenset(), bucket.read)
    assert built.error_code == "InvalidMetadata" and "'ContentType'" in built.error_message
