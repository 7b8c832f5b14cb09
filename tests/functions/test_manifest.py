import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kendra_ingest.manifest import (
    MAX_MANIFEST_BYTES,
    Manifest,
    ManifestError,
    batches_prefix,
    default_source,
    deletes_object_key,
    derive_job_id,
    is_valid_job_id,
    job_prefix,
    parse_manifest,
    read_deletes,
)


def manifest_bytes(**fields) -> bytes:
    return json.dumps({"schemaVersion": 1, "jobId": "phonebook-2025-10-05T12-00Z", **fields}).encode()


def error_of(raw: bytes) -> str:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(raw)
    message = caught.value.message
    assert "\n" not in message and message == str(caught.value)
    return message


def test_full_manifest_parses_with_camel_case_keys():
    manifest = parse_manifest(manifest_bytes(
        source="phonebook", deletes=["emp-888", "emp-999"], deletesKey="deletes.txt",
        expectedDocuments=1234, force=False,
    ))
    assert manifest == Manifest.model_validate({
        "schemaVersion": 1, "jobId": "phonebook-2025-10-05T12-00Z", "source": "phonebook",
        "deletes": ["emp-888", "emp-999"], "deletesKey": "deletes.txt", "expectedDocuments": 1234,
    })
    assert (manifest.job_id, manifest.deletes_key, manifest.expected_documents) == (
        "phonebook-2025-10-05T12-00Z", "deletes.txt", 1234)


@pytest.mark.parametrize(("job_id", "source"), [
    ("phonebook-2025-10-05", "phonebook"), ("nodash", "nodash"), ("a.b_c-d-e", "a.b_c"),
])
def test_source_defaults_to_job_id_up_to_first_dash(job_id, source):
    assert parse_manifest(manifest_bytes(jobId=job_id)).source == source
    assert parse_manifest(manifest_bytes(jobId=job_id, source=None)).source == source


def test_explicit_source_wins():
    assert parse_manifest(manifest_bytes(source="hr directory")).source == "hr directory"


def test_defaults():
    manifest = parse_manifest(manifest_bytes())
    assert (manifest.deletes, manifest.deletes_key, manifest.expected_documents, manifest.force) == (
        [], None, None, False)


def test_malformed_json_names_line_and_column():
    assert error_of(b'{"schemaVersion": 1,') == (
        "manifest is not valid JSON: line 1 column 21: Expecting property name enclosed in double quotes")
    assert error_of(b"") == "manifest is empty (0 bytes); it must be a JSON object"
    assert error_of(b" \r\n") == "manifest is empty (3 bytes of whitespace); it must be a JSON object"


@pytest.mark.parametrize(("raw", "got"), [(b"[]", "array"), (b'"x"', "string"), (b"null", "null"), (b"3", "number")])
def test_manifest_must_be_an_object(raw, got):
    assert error_of(raw) == f"manifest must be a JSON object (got {got})"


def test_unknown_key_is_named_with_the_allowed_keys():
    assert error_of(manifest_bytes(colour="red")) == (
        "manifest field 'colour': unknown key (allowed: schemaVersion, jobId, source, deletes, deletesKey, "
        "expectedDocuments, force, documentsPrefix, metadataPrefix, metadataRequired, accessControlKey, include, "
        "exclude, languageCode, mode, allowMassDelete)")


def test_snake_case_keys_are_unknown():
    assert "manifest field 'job_id': unknown key" in error_of(b'{"schemaVersion": 1, "job_id": "x"}')


def test_bad_job_id():
    assert error_of(manifest_bytes(jobId="a b")) == (
        "manifest field 'jobId': must be 1-80 characters of [A-Za-z0-9._-], starting with a letter or digit "
        "(got 'a b')")


@pytest.mark.parametrize("job_id", [".", "..", "-x", ".hidden", "_x"])
def test_job_id_starts_with_a_letter_or_digit(job_id):
    # A job id is a path segment of report keys and of the sandbox's output folders.
    assert error_of(manifest_bytes(jobId=job_id)) == (
        "manifest field 'jobId': must be 1-80 characters of [A-Za-z0-9._-], starting with a letter or digit "
        f"(got {job_id!r})")


@pytest.mark.parametrize(("manifest", "problem"), [
    ({"deletesKey": "batches/gone.txt"}, "must not be under documentsPrefix 'batches/'"),
    ({"deletesKey": "old.txt.metadata.json"}, "must not be a metadata file"),
    ({"deletesKey": "meta/d.txt", "metadataPrefix": "meta/"}, "must not be under metadataPrefix 'meta/'"),
    ({"deletesKey": "_control/deletes.txt"}, "must not be under _control/"),
    ({"deletesKey": "acl.json", "accessControlKey": "acl.json"}, "must not be the accessControlKey file"),
])
def test_deletes_key_must_not_be_a_file_of_the_job(manifest, problem):
    message = error_of(manifest_bytes(**manifest))
    assert message.startswith(f"manifest field 'deletesKey': {problem}"), message
    assert message.endswith(f"(got {manifest['deletesKey']!r})")


def test_deletes_key_beside_the_documents_is_fine():
    assert parse_manifest(manifest_bytes(deletesKey="deletes.txt")).deletes_key == "deletes.txt"
    # With documentsPrefix "" the deletes file is reserved, never a document.
    assert parse_manifest(manifest_bytes(deletesKey="d/x.txt", documentsPrefix="")).deletes_key == "d/x.txt"


def test_a_huge_manifest_is_refused_before_parsing():
    raw = manifest_bytes()[:-1] + b" " * MAX_MANIFEST_BYTES + b"}"
    message = error_of(raw)
    assert message.startswith(f"manifest is {len(raw)} bytes, more than the {MAX_MANIFEST_BYTES} allowed")
    assert "deletesKey" in message


def test_missing_job_id_is_the_only_error():
    assert error_of(b'{"schemaVersion": 1}') == "manifest field 'jobId': required"


def test_job_id_length_limit():
    parse_manifest(manifest_bytes(jobId="j" * 80))
    assert "manifest field 'jobId'" in error_of(manifest_bytes(jobId="j" * 81))
    assert "manifest field 'jobId'" in error_of(manifest_bytes(jobId=""))


@pytest.mark.parametrize("version", [2, 0, True, 1.0, "1", None])
def test_only_schema_version_one(version):
    assert error_of(manifest_bytes(schemaVersion=version)).startswith("manifest field 'schemaVersion': ")


@pytest.mark.parametrize(("fields", "field"), [
    ({"expectedDocuments": "5"}, "expectedDocuments"), ({"expectedDocuments": -1}, "expectedDocuments"),
    ({"expectedDocuments": True}, "expectedDocuments"), ({"force": "true"}, "force"), ({"force": 1}, "force"),
    ({"deletes": "emp-1"}, "deletes"), ({"deletes": ["ok", 7]}, "deletes[1]"), ({"deletes": [""]}, "deletes[0]"),
    ({"deletesKey": "/abs.txt"}, "deletesKey"), ({"deletesKey": "../up.txt"}, "deletesKey"),
    ({"source": ""}, "source"), ({"source": 5}, "source"),
])
def test_types_are_strict_and_the_field_is_named(fields, field):
    assert error_of(manifest_bytes(**fields)).startswith(f"manifest field '{field}': ")


def test_every_problem_is_reported_on_one_line():
    message = error_of(b'{"schemaVersion": 2, "jobId": "a b", "force": "yes", "colour": 1}')
    assert message.count("; ") == 3
    for field in ("schemaVersion", "jobId", "force", "colour"):
        assert f"manifest field '{field}'" in message


def test_utf8_bom_is_accepted():
    assert parse_manifest(b"\xef\xbb\xbf" + manifest_bytes()).job_id == "phonebook-2025-10-05T12-00Z"


def test_not_utf8_and_duplicate_keys_and_nan():
    assert error_of(b'{"jobId": "\xff"}') == "manifest is not valid UTF-8: byte 0xff at offset 11"
    assert error_of(b'{"schemaVersion": 1, "jobId": "a", "jobId": "b"}') == (
        "manifest field 'jobId': appears more than once")
    assert error_of(b'{"schemaVersion": 1, "jobId": "a", "expectedDocuments": NaN}').startswith(
        "manifest is not valid JSON: NaN")


@given(st.text(max_size=90))
def test_job_id_rule_matches_validation(job_id):
    raw = manifest_bytes(jobId=job_id)
    if is_valid_job_id(job_id):
        assert parse_manifest(raw).job_id == job_id
    else:
        assert error_of(raw).startswith("manifest field 'jobId': must be 1-80 characters")


def test_derive_job_id_uses_a_valid_raw_job_id_even_if_the_rest_is_invalid():
    assert derive_job_id("p/_control/manifest.json", b'{"jobId": "hr-7", "colour": 1}') == "hr-7"


def test_derive_job_id_for_unreadable_manifest():
    job_id = derive_job_id("teams/hr dept/_control/manifest.json", b"{nope")
    assert job_id.startswith("invalid-teams-hr-dept-") and len(job_id) == len("invalid-teams-hr-dept-") + 8
    assert derive_job_id("_control/manifest.json", b"{nope").startswith("invalid-")


@given(st.text(), st.binary())
def test_derive_job_id_is_always_a_valid_stable_job_id(key, raw):
    job_id = derive_job_id(key, raw)
    assert is_valid_job_id(job_id)
    assert derive_job_id(key, raw) == job_id


@pytest.mark.parametrize(("key", "prefix"), [
    ("P/_control/manifest.json", "P"), ("_control/manifest.json", ""),
    ("teams/hr/2025/_control/manifest.json", "teams/hr/2025"),
])
def test_job_prefix(key, prefix):
    assert job_prefix(key) == prefix


@pytest.mark.parametrize("key", [
    "P/manifest.json", "P/_control/manifest.json.bak", "P_control/manifest.json", "/_control/manifest.json",
    "P/_control/other.json",
])
def test_job_prefix_rejects_other_keys(key):
    with pytest.raises(ManifestError, match=r"does not match <prefix>/_control/manifest\.json"):
        job_prefix(key)


def test_job_layout_keys():
    manifest = parse_manifest(manifest_bytes(deletesKey="lists/deletes.txt"))
    assert batches_prefix("P") == "P/batches/" and batches_prefix("") == "batches/"
    assert deletes_object_key("P", manifest) == "P/lists/deletes.txt"
    assert deletes_object_key("", manifest) == "lists/deletes.txt"
    assert deletes_object_key("P", parse_manifest(manifest_bytes())) is None


def test_read_deletes():
    body = b"\xef\xbb\xbfemp-1\r\n  emp-2  \n\n\t\r\nemp-1\nemp 3\n"
    assert read_deletes(body) == ["emp-1", "emp-2", "emp 3"]
    assert read_deletes(b"") == []
    with pytest.raises(ManifestError, match="not valid UTF-8"):
        read_deletes(b"\xff\n")


def test_requested_deletes_merges_manifest_and_file_ids_once():
    manifest = parse_manifest(manifest_bytes(deletes=["a", "b", "a"]))
    assert manifest.requested_deletes(["c", "b"]) == ["a", "b", "c"]


def test_default_source_helper():
    assert default_source("x-y-z") == "x"


# -- source layout keys --------------------------------------------------------------------------------

def layout(**keys):
    return parse_manifest(manifest_bytes(**keys))


def test_layout_defaults_are_the_batches_layout():
    m = layout()
    assert (m.documents_prefix, m.metadata_prefix, m.metadata_required, m.access_control_key) == (
        "batches/", None, True, None)
    assert (m.include, m.exclude, m.language_code, m.mode, m.allow_mass_delete) == ([], [], None, "incremental", False)


def test_connector_layout_is_accepted_and_folders_get_their_slash():
    m = layout(documentsPrefix="", metadataPrefix="metadata", metadataRequired=False,
               accessControlKey="acl/s3-acl.json", include=["**/*.pdf", "**/*.html"], exclude=["drafts/**"],
               languageCode="ja", mode="full", allowMassDelete=True)
    assert m.documents_prefix == "" and m.metadata_prefix == "metadata/"
    assert layout(documentsPrefix="docs").documents_prefix == "docs/"


@pytest.mark.parametrize(("keys", "field", "rule"), [
    ({"include": ["docs/[ab"]}, "include", "pattern 0 'docs/[ab' does not parse: unclosed '['"),
    ({"exclude": ["ok/**", "a**"]}, "exclude", "pattern 1 'a**' does not parse: '**' must be a whole path segment"),
    ({"exclude": [""]}, "exclude", "empty pattern"),
    ({"include": ["/abs/*.pdf"]}, "include", "must be relative"),
    ({"metadataPrefix": "batches/meta/"}, "metadataPrefix", "overlaps documentsPrefix 'batches/'"),
    ({"documentsPrefix": "docs/", "metadataPrefix": "docs"}, "metadataPrefix", "overlaps documentsPrefix 'docs/'"),
    ({"documentsPrefix": "meta/docs/", "metadataPrefix": "meta/"}, "metadataPrefix", "overlaps"),
    ({"documentsPrefix": "../other/"}, "documentsPrefix", "must stay under the job prefix"),
    ({"documentsPrefix": "/abs/"}, "documentsPrefix", "must be relative to the job prefix"),
    ({"documentsPrefix": "a//b/"}, "documentsPrefix", "must stay under the job prefix"),
    ({"metadataPrefix": "meta/../../x"}, "metadataPrefix", "must stay under the job prefix"),
    ({"metadataPrefix": ""}, "metadataPrefix", "at least 1 character"),
    ({"documentsPrefix": "_control/"}, "documentsPrefix", "must not be under _control/"),
    ({"accessControlKey": "../acl.json"}, "accessControlKey", "must be a relative path under the job prefix"),
    ({"accessControlKey": "_control/manifest.json"}, "accessControlKey", "must not be the manifest"),
    ({"languageCode": "japanese!"}, "languageCode", "pattern"),
    ({"mode": "mirror"}, "mode", "'incremental' or 'full'"),
    ({"metadataRequired": "false"}, "metadataRequired", "boolean"),
    ({"allowMassDelete": 1}, "allowMassDelete", "boolean"),
])
def test_bad_layout_keys_are_manifest_errors_naming_the_key(keys, field, rule):
    message = error_of(manifest_bytes(**keys))
    assert message.startswith(f"manifest field '{field}': "), message
    assert rule in message, message


def test_read_deletes_strips_crlf_bom_blanks_and_duplicates():
    assert read_deletes(b"\xef\xbb\xbfa\r\n\r\n  b  \r\na\n\n") == ["a", "b"]


@pytest.mark.parametrize(("body", "message"), [
    (b"ok\n" + b"d" * 2049, "deletes file line 2: the id is 2049 characters; a DocumentId has at most 2048"),
    (b"ok\n\n" + "é".encode() * 513, "deletes file line 3: the id must be at most 1024 bytes in UTF-8, the "
                                     "documents table's key limit (got 1026 bytes in 513 characters)"),
    (b"ok\xff", "deletes file is not valid UTF-8: byte at offset 2"),
])
def test_read_deletes_refuses_ids_that_cannot_be_sent(body, message):
    with pytest.raises(ManifestError) as caught:
        read_deletes(body)
    assert caught.value.message == message


def test_manifest_deletes_over_1024_bytes_are_refused():
    assert error_of(manifest_bytes(deletes=["é" * 600])) == (
        "manifest field 'deletes[0]': must be at most 1024 bytes in UTF-8, the documents table's key limit "
        "(got 1200 bytes in 600 characters)")
