"""The manifest's layout keys as key rules: documents, metadata under a prefix, patterns, the ACL file."""

import json

import pytest
from kendra_ingest import pairing
from kendra_ingest.globs import GlobError, compile_glob
from kendra_ingest.layout import AccessControlError, Layout, parse_access_control
from kendra_ingest.manifest import parse_manifest
from kendra_ingest.models import ErrorCode, Failure, Pair, SourceObject


def manifest(**keys):
    return parse_manifest(json.dumps({"schemaVersion": 1, "jobId": "c-1", **keys}).encode())


def objs(*keys: str) -> list[SourceObject]:
    return [SourceObject(key=k, etag=f"e-{k}", size=1) for k in sorted(keys)]


@pytest.mark.parametrize(("pattern", "key", "matches"), [
    ("**/*.pdf", "a/b/c.pdf", True), ("**/*.pdf", "c.pdf", True), ("*.pdf", "a/c.pdf", False),
    ("drafts/**", "drafts/x/y.txt", True), ("drafts/**", "final/x.txt", False), ("a/**/b.txt", "a/b.txt", True),
    ("a/**/b.txt", "a/x/y/b.txt", True), ("[!a]*.txt", "b.txt", True), ("[!a]*.txt", "a.txt", False),
    ("doc?.md", "doc1.md", True), ("doc?.md", "doc/.md", False), ("x+y(1).txt", "x+y(1).txt", True),
])
def test_globs_match_as_the_connector_patterns_do(pattern, key, matches):
    assert bool(compile_glob(pattern).fullmatch(key)) is matches


@pytest.mark.parametrize("bad", ["", "/x", "a/[bc", "x]", "a**", "**b/c", "[]"])
def test_globs_that_do_not_parse(bad):
    with pytest.raises(GlobError):
        compile_glob(bad)


def connector_layout(**keys) -> Layout:
    return Layout.of("P", manifest(documentsPrefix="", metadataPrefix="metadata/", metadataRequired=False,
                                   accessControlKey="acl.json", deletesKey="deletes.txt", **keys))


def test_every_object_under_p_is_a_document_except_the_reserved_ones():
    layout = connector_layout()
    listed = objs("P/_control/manifest.json", "P/acl.json", "P/deletes.txt", "P/a.pdf", "P/dir/b.txt",
                  "P/dir/", "P/stray.pdf.metadata.json", "P/metadata/a.pdf.metadata.json")
    metadata = [o for o in listed if o.key.startswith("P/metadata/")]
    merged = [o.key for o in layout.merge(listed, metadata)]
    assert merged == ["P/a.pdf", "P/a.pdf.metadata.json", "P/dir/b.txt"]


def test_metadata_under_its_prefix_pairs_with_its_document_and_keeps_its_real_key():
    layout = connector_layout()
    documents = objs("P/a.pdf", "P/a-b.pdf", "P/z/c.txt")
    metadata = objs("P/metadata/a.pdf.metadata.json", "P/metadata/a-b.pdf.metadata.json",
                    "P/metadata/gone.txt.metadata.json")
    assert layout.metadata_listing == "P/metadata/"
    items = list(pairing.pair_objects(layout.merge(documents, metadata), layout.documents,
                                      metadata_required=False, real_key=layout.real_metadata_key))
    pairs = {i.document.key: (i.metadata.key if i.metadata else None) for i in items if isinstance(i, Pair)}
    assert pairs == {"P/a.pdf": "P/metadata/a.pdf.metadata.json", "P/a-b.pdf": "P/metadata/a-b.pdf.metadata.json",
                     "P/z/c.txt": None}
    (lone,) = [i for i in items if isinstance(i, Failure)]
    assert lone.error_code == ErrorCode.MISSING_DOCUMENT and lone.document_id == "gone"
    assert lone.metadata_key == "P/metadata/gone.txt.metadata.json"
    assert "P/metadata/gone.txt.metadata.json" in lone.error_message


def test_metadata_listing_follows_the_documents_prefix():
    layout = Layout.of("P", manifest(documentsPrefix="docs/", metadataPrefix="meta/"))
    assert layout.metadata_listing == "P/meta/docs/"
    assert layout.side_key("P/meta/docs/a.txt.metadata.json") == "P/docs/a.txt.metadata.json"
    assert layout.real_metadata_key("P/docs/a.txt.metadata.json") == "P/meta/docs/a.txt.metadata.json"


def test_exclude_wins_and_excluded_documents_take_their_metadata_with_them():
    layout = Layout.of("P", manifest(include=["**/*.txt"], exclude=["drafts/**"]))
    listed = objs("P/batches/a.txt", "P/batches/a.txt.metadata.json", "P/batches/b.pdf",
                  "P/batches/b.pdf.metadata.json", "P/batches/drafts/c.txt", "P/batches/drafts/c.txt.metadata.json")
    assert [o.key for o in layout.merge(listed)] == ["P/batches/a.txt", "P/batches/a.txt.metadata.json"]
    assert layout.excluded == 2


def test_side_by_side_layout_with_documents_prefix_empty_keeps_metadata_beside_documents():
    layout = Layout.of("P", manifest(documentsPrefix=""))
    listed = objs("P/_control/manifest.json", "P/a.txt", "P/a.txt.metadata.json")
    assert [o.key for o in layout.merge(listed)] == ["P/a.txt", "P/a.txt.metadata.json"]


ACL = [
    {"keyPrefix": "s3://connector-bucket/hr/", "aclEntries": [{"Name": "hr", "Type": "GROUP", "Access": "ALLOW"}]},
    {"keyPrefix": "s3://connector-bucket/hr/secret/", "aclEntries": [
        {"Name": "ceo", "Type": "USER", "Access": "ALLOW"}, {"Name": "hr", "Type": "GROUP", "Access": "DENY"}]},
]


def test_access_control_file_longest_key_prefix_wins_and_the_bucket_is_ignored():
    acl = parse_access_control(json.dumps(ACL).encode())
    assert acl.paths == ("hr/", "hr/secret/")
    assert acl.rule_for("hr/handbook.pdf") == 0
    assert acl.rule_for("hr/secret/pay.pdf") == 1
    assert acl.rule_for("public/news.pdf") is None
    assert acl.entries[1][0] == {"Name": "ceo", "Type": "USER", "Access": "ALLOW"}


@pytest.mark.parametrize(("raw", "says"), [
    (b"not json", "is not valid JSON"),
    (b'{"keyPrefix": "s3://b/"}', "must be a JSON array"),
    (json.dumps([{"keyPrefix": "hr/", "aclEntries": ACL[0]["aclEntries"]}]).encode(), "must start with s3://"),
    (json.dumps([{"keyPrefix": "s3://b/hr/"}]).encode(), "entry 0 field 'aclEntries': required"),
    (json.dumps([{"keyPrefix": "s3://b/hr/", "aclEntries": [{"Name": "x", "Type": "ROLE", "Access": "ALLOW"}]}]
                ).encode(), "aclEntries[0].Type"),
    (json.dumps([{"keyPrefix": "s3://b/", "aclEntries": [{"Name": f"u{i}", "Type": "USER", "Access": "ALLOW"}
                                                         for i in range(201)]}]).encode(), "at most 200"),
])
def test_access_control_file_that_does_not_parse(raw, says):
    with pytest.raises(AccessControlError) as caught:
        parse_access_control(raw, key="P/acl.json")
    assert says in caught.value.message and "P/acl.json" in caught.value.message


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "access control file P/acl.json is empty (0 bytes); it must be a JSON array of {keyPrefix, aclEntries}"),
    (b"[\xff]", "access control file P/acl.json is not valid UTF-8: byte 0xff at offset 1"),
    (b'[{"keyPrefix": 1,}]', "access control file P/acl.json is not valid JSON: line 1 column 18: Expecting property "
                             "name enclosed in double quotes"),
    (b"[1]", "access control file P/acl.json entry 0: must be an object {keyPrefix, aclEntries} (got number)"),
])
def test_access_control_file_errors_point_at_the_file_as_written(raw, message):
    # Positions count in the file itself, and nothing of how it is read shows through.
    with pytest.raises(AccessControlError) as caught:
        parse_access_control(raw, key="P/acl.json")
    assert caught.value.message == message


def test_access_control_file_with_a_bom_is_read():
    raw = b"\xef\xbb\xbf" + json.dumps(ACL).encode()
    assert parse_access_control(raw).paths == parse_access_control(json.dumps(ACL).encode()).paths
