from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kendra_ingest.models import ErrorCode, Failure, Pair, SourceObject
from kendra_ingest.pairing import (
    METADATA_SUFFIX,
    DeleteConflicts,
    DocumentIdClaims,
    Pairing,
    conflicting_operations,
    default_document_id,
    pair_objects,
)

PREFIX = "P/batches/"


def obj(relative: str) -> SourceObject:
    return SourceObject(key=PREFIX + relative, etag="e", size=1)


def listing(*relatives: str) -> list[SourceObject]:
    return [obj(r) for r in sorted(relatives)]


def summarize(items) -> list[tuple[str, str]]:
    return [
        ("pair", item.document.key[len(PREFIX):]) if isinstance(item, Pair) else (item.error_code, item.document_id)
        for item in items
    ]


@pytest.mark.parametrize(("key", "document_id"), [
    ("P/batches/a/b.pdf", "a/b"), ("P/batches/a.b/c", "a.b/c"), ("P/batches/x.tar.gz", "x.tar"),
    ("P/batches/.hidden", ".hidden"), ("P/batches/naked", "naked"), ("P/batches/é ü/名前.txt", "é ü/名前"),
])
def test_default_document_id(key, document_id):
    assert default_document_id(key, PREFIX) == document_id


def test_default_document_id_outside_prefix_is_an_error():
    with pytest.raises(ValueError, match="not under"):
        default_document_id("Q/batches/a.pdf", PREFIX)


def test_pairs_missing_metadata_and_missing_document():
    items = pair_objects(listing(
        "a.pdf", "a.pdf.metadata.json", "b.txt", "c.json.metadata.json", "d/", "d/e.md", "d/e.md.metadata.json",
    ), PREFIX)
    assert summarize(items) == [
        ("pair", "a.pdf"), ("MissingMetadata", "b"), ("MissingDocument", "c"), ("pair", "d/e.md"),
    ]


def test_failure_messages_name_the_missing_key():
    missing_meta, missing_doc = pair_objects(listing("b.txt", "c.json.metadata.json"), PREFIX)
    assert missing_meta.error_message == (
        "document 'P/batches/b.txt' has no metadata object 'P/batches/b.txt.metadata.json'")
    assert missing_doc.error_message == (
        "metadata object 'P/batches/c.json.metadata.json' has no document object 'P/batches/c.json'")


def test_keys_listed_between_a_document_and_its_metadata():
    # '-' and ' ' sort before '.', so these list between a.pdf and a.pdf.metadata.json.
    items = pair_objects(listing(
        "a.pdf", "a.pdf.metadata.json", "a.pdf-2", "a.pdf-2.metadata.json", "a.pdf 3", "a.pdf!",
    ), PREFIX)
    assert Counter(kind for kind, _ in summarize(items)) == {"pair": 2, "MissingMetadata": 2}


def test_metadata_keys_are_never_documents():
    items = pair_objects(listing("x", "x.metadata.json", "x.metadata.json.metadata.json"), PREFIX)
    assert summarize(items) == [("pair", "x"), ("MissingDocument", "x.metadata")]


def test_folders_are_ignored():
    assert list(pair_objects(listing("a/", "a/b/"), PREFIX)) == []


def test_out_of_order_or_repeated_keys_are_rejected():
    with pytest.raises(ValueError, match="out of order"):
        list(pair_objects([obj("b.pdf"), obj("a.pdf")], PREFIX))
    with pytest.raises(ValueError, match="out of order"):
        list(pair_objects([obj("a.pdf"), obj("a.pdf")], PREFIX))


def test_keys_outside_the_prefix_are_rejected():
    with pytest.raises(ValueError, match="not under"):
        list(pair_objects([SourceObject(key="elsewhere/a.pdf", etag="e", size=1)], PREFIX))


# Names from a small alphabet so that documents, metadata and near-miss keys collide often.
names = st.text(alphabet="ab.-/ é", min_size=1, max_size=6)
relative_keys = st.sets(st.one_of(names, names.map(lambda n: n + METADATA_SUFFIX)), max_size=40)


@given(relative_keys)
def test_every_object_lands_in_exactly_one_pair_or_failure(relatives):
    keys = sorted(PREFIX + r for r in relatives)
    items = list(pair_objects((SourceObject(key=k, etag="e", size=1) for k in keys), PREFIX))

    files = [k for k in keys if not k.endswith("/")]
    metas = {k for k in files if k.endswith(METADATA_SUFFIX)}
    documents = [k for k in files if k not in metas]
    paired = {d for d in documents if d + METADATA_SUFFIX in metas}
    lone_metas = [m for m in metas if m[: -len(METADATA_SUFFIX)] not in paired]

    pairs = [i for i in items if isinstance(i, Pair)]
    failures = [i for i in items if isinstance(i, Failure)]
    assert 2 * len(pairs) + len(failures) == len(files)
    assert {p.document.key for p in pairs} == paired
    assert all(p.metadata.key == p.document.key + METADATA_SUFFIX for p in pairs)
    assert Counter(f.document_id for f in failures if f.error_code == ErrorCode.MISSING_METADATA) == Counter(
        default_document_id(d, PREFIX) for d in documents if d not in paired)
    assert Counter(f.document_id for f in failures if f.error_code == ErrorCode.MISSING_DOCUMENT) == Counter(
        default_document_id(m[: -len(METADATA_SUFFIX)], PREFIX) for m in lone_metas)
    # Deterministic: the same listing gives the same output.
    assert list(pair_objects((SourceObject(key=k, etag="e", size=1) for k in keys), PREFIX)) == items


def test_streaming_memory_is_bounded_by_pending_keys_not_job_size():
    pairing = Pairing(PREFIX)
    produced = 0
    most_pending = 0

    def keys() -> Iterator[SourceObject]:
        nonlocal most_pending
        for i in range(100_000):  # 200,000 keys; every 1,000th document lacks its metadata
            name = f"{i // 1000:03d}/doc-{i:06d}.pdf"
            yield SourceObject.model_construct(key=PREFIX + name, etag="d", size=10)
            if i % 1000:
                yield SourceObject.model_construct(key=PREFIX + name + METADATA_SUFFIX, etag="m", size=2)
            most_pending = max(most_pending, pairing.pending)
            assert pairing.pending <= 2
            # Output keeps pace with input: never more than a couple of documents behind.
            assert produced >= i - 2

    for obj_ in keys():
        for _ in pairing.feed(obj_):
            produced += 1
    produced += sum(1 for _ in pairing.finish())
    assert produced == 100_000 and most_pending <= 2


def test_document_id_claims_first_by_key_wins():
    claims = DocumentIdClaims()
    assert claims.claim("emp-1", "P/batches/a.json") is None
    assert claims.claim("emp-2", "P/batches/b.json") is None
    duplicate = claims.claim("emp-1", "P/batches/c.json")
    assert duplicate is not None
    assert (duplicate.document_id, duplicate.error_code) == ("emp-1", ErrorCode.DUPLICATE_DOCUMENT_ID)
    assert "'P/batches/c.json'" in duplicate.error_message
    assert claims.claim("emp-1", "P/batches/d.json") is not None  # every later claim fails


def test_conflicting_operations_fail_both_the_put_and_the_delete():
    failures = conflicting_operations(["a", "b", "c"], ["c", "x", "a"])
    assert [(f.document_id, f.error_code) for f in failures] == [
        ("a", ErrorCode.CONFLICTING_OPERATION), ("c", ErrorCode.CONFLICTING_OPERATION),
        ("c", ErrorCode.CONFLICTING_OPERATION), ("a", ErrorCode.CONFLICTING_OPERATION),
    ]
    assert [f.error_message.split(":")[0] for f in failures] == [
        "operation put", "operation put", "operation delete", "operation delete"]


def test_delete_conflicts_streaming():
    conflicts = DeleteConflicts(["a", "b"])
    assert conflicts.check_put("z") is None
    assert conflicts.check_put("b") is not None
    assert conflicts.conflicting == {"b"}
    assert [f.document_id for f in conflicts.delete_failures()] == ["b"]


@settings(max_examples=50)
@given(st.lists(st.sampled_from("abcdef")), st.lists(st.sampled_from("defgh"), unique=True))
def test_conflict_rows_match_the_intersection(puts, deletes):
    failures = conflicting_operations(puts, deletes)
    both = set(puts) & set(deletes)
    assert len(failures) == sum(p in both for p in puts) + len(both)
