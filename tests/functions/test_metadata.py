import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kendra_ingest.metadata import (
    CONTENT_TYPE_BY_EXTENSION,
    CONTENT_TYPES,
    DocumentMetadata,
    attribute_value,
    content_type_for,
    parse_metadata,
    resolve_document_id,
    to_document,
)
from kendra_ingest.models import ErrorCode, Failure

PREFIX = "P/batches/"
KEY = "P/batches/hr/emp-1.json"


def meta(**fields) -> DocumentMetadata:
    parsed = parse_metadata(json.dumps(fields).encode(), document_id_hint="hint")
    assert isinstance(parsed, DocumentMetadata), parsed
    return parsed


def parse_failure(raw: bytes) -> Failure:
    parsed = parse_metadata(raw, document_id_hint="hint")
    assert isinstance(parsed, Failure)
    assert parsed.error_code == ErrorCode.INVALID_METADATA
    return parsed


def document(metadata: DocumentMetadata, **kwargs) -> dict:
    kwargs.setdefault("body", b"{}")
    built = to_document(metadata, document_id=kwargs.pop("document_id", "emp-1"), key=kwargs.pop("key", KEY), **kwargs)
    assert isinstance(built, dict), built
    return built


def failure(metadata: DocumentMetadata, **kwargs) -> Failure:
    kwargs.setdefault("body", b"{}")
    built = to_document(metadata, document_id=kwargs.pop("document_id", "emp-1"), key=kwargs.pop("key", KEY), **kwargs)
    assert isinstance(built, Failure), built
    return built


def attributes(**attrs) -> list[dict]:
    return document(meta(Attributes=attrs))["Attributes"]


# --- parsing ---------------------------------------------------------------------------------

def test_full_metadata_file():
    parsed = meta(
        DocumentId="emp-1", Title="Ada", ContentType="JSON", Attributes={"dept": "HR"},
        AccessControlList=[{"Name": "hr", "Type": "GROUP", "Access": "ALLOW"}],
        HierarchicalAccessControlList=[{"PrincipalList": [{"Name": "u", "Type": "USER", "Access": "DENY",
                                                           "DataSourceId": "ds-1"}]}],
    )
    assert (parsed.document_id, parsed.title, parsed.content_type) == ("emp-1", "Ada", "JSON")


def test_empty_object_is_valid_metadata():
    assert meta() == DocumentMetadata()


def test_bom_is_rejected():
    assert parse_failure(b"\xef\xbb\xbf{}").error_message == (
        "metadata starts with a UTF-8 byte order mark; save it as UTF-8 without BOM")


@pytest.mark.parametrize(("raw", "message"), [
    (b"{nope", "metadata is not valid JSON: line 1 column 2: Expecting property name enclosed in double quotes"),
    (b"", "metadata is empty (0 bytes); it must be a JSON object"),
    (b"[1]", "metadata must be a JSON object (got array)"),
    (b'{"Title": "\xff"}', "metadata is not valid UTF-8: byte 0xff at offset 11"),
    (b'{"Title": "a", "Title": "b"}', "metadata field 'Title': appears more than once"),
])
def test_unreadable_metadata(raw, message):
    parsed = parse_failure(raw)
    assert (parsed.document_id, parsed.error_message) == ("hint", message)


@pytest.mark.parametrize(("fields", "field"), [
    ({"Title": 3}, "Title"), ({"DocumentId": 7}, "DocumentId"), ({"DocumentId": ""}, "DocumentId"),
    ({"DocumentId": "x" * 2049}, "DocumentId"), ({"ContentType": "DOCX"}, "ContentType"),
    ({"Attributes": []}, "Attributes"), ({"Colour": "red"}, "Colour"),
    ({"AccessControlList": {}}, "AccessControlList"),
])
def test_wrong_types_name_the_field(fields, field):
    assert parse_failure(json.dumps(fields).encode()).error_message.startswith(f"metadata field '{field}': ")


def test_unknown_top_level_key_lists_the_allowed_ones():
    assert parse_failure(b'{"Colour": 1}').error_message == (
        "metadata field 'Colour': unknown key (allowed: DocumentId, Title, ContentType, Attributes, "
        "AccessControlList, HierarchicalAccessControlList, AccessControlConfigurationId)")


def test_failure_carries_the_declared_document_id_when_it_is_valid():
    assert parse_failure(b'{"DocumentId": "emp-1", "Title": 3}').document_id == "emp-1"
    assert parse_failure(json.dumps({"DocumentId": "x" * 2049}).encode()).document_id == "hint"


def test_2049_char_document_id_in_metadata_names_document_id_and_the_length():
    assert parse_failure(json.dumps({"DocumentId": "x" * 2049}).encode()).error_message == (
        "metadata field 'DocumentId': string should have at most 2048 characters (got 2049 characters)")


def test_a_document_id_of_1024_bytes_is_accepted():
    assert meta(DocumentId="x" * 1024).document_id == "x" * 1024


@pytest.mark.parametrize(("document_id", "size"), [("x" * 1025, 1025), ("x" * 2048, 2048), ("é" * 513, 1026)])
def test_a_document_id_over_1024_utf8_bytes_is_refused(document_id, size):
    # Kendra takes 2,048 characters, but the documents table (its bySource index sorts by the id) takes a
    # key of 1,024 bytes at most: such a document could be put but never recorded.
    message = (f"metadata field 'DocumentId': must be at most 1024 bytes in UTF-8, the documents table's key "
               f"limit (got {size} bytes in {len(document_id)} characters)")
    assert parse_failure(json.dumps({"DocumentId": document_id}).encode()).error_message == message
    result = failure(meta(), document_id=document_id)
    assert result.error_code == "InvalidMetadata" and result.error_message == message


# --- access control lists --------------------------------------------------------------------

PRINCIPAL = {"Name": "hr", "Type": "GROUP", "Access": "ALLOW"}


def test_acls_reach_the_document():
    built = document(meta(
        AccessControlList=[PRINCIPAL, {"Name": "bob", "Type": "USER", "Access": "DENY", "DataSourceId": "ds_1"}],
        HierarchicalAccessControlList=[{"PrincipalList": [PRINCIPAL]}, {"PrincipalList": []}],
    ))
    assert built["AccessControlList"] == [
        PRINCIPAL, {"Name": "bob", "Type": "USER", "Access": "DENY", "DataSourceId": "ds_1"}]
    assert built["HierarchicalAccessControlList"] == [{"PrincipalList": [PRINCIPAL]}, {"PrincipalList": []}]


def test_no_acls_means_no_acl_keys():
    built = document(meta())
    assert "AccessControlList" not in built and "HierarchicalAccessControlList" not in built


@pytest.mark.parametrize(("principal", "field"), [
    ({**PRINCIPAL, "Type": "ROLE"}, "Type"), ({**PRINCIPAL, "Access": "allow"}, "Access"),
    ({**PRINCIPAL, "Name": ""}, "Name"), ({**PRINCIPAL, "Name": "n" * 201}, "Name"),
    ({**PRINCIPAL, "Name": "tab\there"}, "Name"), ({**PRINCIPAL, "DataSourceId": "-x"}, "DataSourceId"),
    ({**PRINCIPAL, "Extra": 1}, "Extra"), ({"Name": "hr", "Type": "GROUP"}, "Access"),
])
def test_bad_principals_name_the_field(principal, field):
    message = parse_failure(json.dumps({"AccessControlList": [PRINCIPAL, principal]}).encode()).error_message
    assert message.startswith(f"metadata field 'AccessControlList[1].{field}': ")


def test_principal_name_of_200_chars_is_accepted():
    meta(AccessControlList=[{**PRINCIPAL, "Name": "n" * 200}])


@pytest.mark.parametrize("levels", [1, 30])
def test_hierarchical_acl_levels_accepted(levels):
    meta(HierarchicalAccessControlList=[{"PrincipalList": [PRINCIPAL]}] * levels)


@pytest.mark.parametrize(("acl", "field"), [
    ([], "HierarchicalAccessControlList"),
    ([{"PrincipalList": [PRINCIPAL]}] * 31, "HierarchicalAccessControlList"),
    ([{"Principals": [PRINCIPAL]}], "HierarchicalAccessControlList[0].PrincipalList"),
    ([{"PrincipalList": [{**PRINCIPAL, "Type": "X"}]}], "HierarchicalAccessControlList[0].PrincipalList[0].Type"),
])
def test_bad_hierarchical_acls(acl, field):
    message = parse_failure(json.dumps({"HierarchicalAccessControlList": acl}).encode()).error_message
    assert f"metadata field '{field}': " in message


# --- attributes ------------------------------------------------------------------------------

def test_attribute_types():
    assert attributes(dept="HR", year=2025, tags=["a", "b"], none=[], big=2**63 - 1, neg=-(2**63)) == [
        {"Key": "dept", "Value": {"StringValue": "HR"}},
        {"Key": "year", "Value": {"LongValue": 2025}},
        {"Key": "tags", "Value": {"StringListValue": ["a", "b"]}},
        {"Key": "none", "Value": {"StringListValue": []}},
        {"Key": "big", "Value": {"LongValue": 2**63 - 1}},
        {"Key": "neg", "Value": {"LongValue": -(2**63)}},
    ]


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-10-05T12:00:00Z", datetime(2025, 10, 5, 12, tzinfo=UTC)),
    ("2025-10-05T14:00:00+02:00", datetime(2025, 10, 5, 14, tzinfo=timezone(timedelta(hours=2)))),
    ("2025-10-05T12:00:00.123456+00:00", datetime(2025, 10, 5, 12, 0, 0, 123456, tzinfo=UTC)),
])
def test_reserved_dates_become_aware_datetimes(text, expected):
    for name in ("_created_at", "_last_updated_at"):
        [converted] = attributes(**{name: text})
        value = converted["Value"]["DateValue"]
        assert value == expected and value.tzinfo is not None


def test_index_date_fields_become_dates_and_other_strings_stay_strings():
    built = document(meta(Attributes={"hired": "2020-01-01T00:00:00Z", "note": "2020-01-01T00:00:00Z"}),
                     date_fields=frozenset({"hired"}))
    assert built["Attributes"] == [
        {"Key": "hired", "Value": {"DateValue": datetime(2020, 1, 1, tzinfo=UTC)}},
        {"Key": "note", "Value": {"StringValue": "2020-01-01T00:00:00Z"}},
    ]


@pytest.mark.parametrize(("value", "rule"), [
    ("2025-10-05T12:00:00", "has no timezone"), ("2025-10-05", "has no timezone"),
    ("yesterday", "not an ISO-8601 date-time"), (1728129600, "a date must be an ISO-8601 string"),
    # In range as written, out of range in UTC: botocore would fail the whole call serializing it.
    ("0001-01-01T00:00:00+14:00", "is out of range in UTC (years 1-9999)"),
    ("9999-12-31T23:59:59-14:00", "is out of range in UTC (years 1-9999)"),
])
def test_bad_dates_name_the_attribute(value, rule):
    message = failure(meta(Attributes={"_created_at": value})).error_message
    assert message.startswith("metadata field 'Attributes._created_at': ") and rule in message


@pytest.mark.parametrize("value", [1.5, True, False, None, {"a": 1}, ["a", 1], [["a"]], ""])
def test_unsupported_values_name_the_attribute(value):
    result = failure(meta(Attributes={"ok": "x", "bad": value}))
    assert (result.document_id, result.error_code) == ("emp-1", ErrorCode.INVALID_METADATA)
    assert result.error_message.startswith("metadata field 'Attributes.bad': ")


@pytest.mark.parametrize("key", ["", "-lead", "has space", "dot.ted", "é", "k" * 201])
def test_illegal_attribute_keys(key):
    assert failure(meta(Attributes={key: "x"})).error_message.startswith(
        f"metadata field 'Attributes.{key}': key must be 1-200 characters")


@pytest.mark.parametrize("key", ["_category", "a", "A-b_9", "9", "k" * 200])
def test_legal_attribute_keys(key):
    assert attributes(**{key: "x"})[0]["Key"] == key


def test_string_length_limits():
    assert attributes(s="x" * 2048)[0]["Value"] == {"StringValue": "x" * 2048}
    assert "strings must be 1-2048 characters (got 2049)" in failure(meta(Attributes={"s": "x" * 2049})).error_message
    assert "Attributes.l" in failure(meta(Attributes={"l": ["ok", "x" * 2049]})).error_message


def test_long_out_of_range():
    assert "64-bit" in failure(meta(Attributes={"n": 2**63})).error_message


def test_every_problem_is_reported():
    message = failure(meta(Attributes={"a": 1.5, "b b": "x", "_created_at": "2025-01-01"}), key="P/batches/x.bin"
                      ).error_message
    for field in ("ContentType", "Attributes.a", "Attributes.b b", "Attributes._created_at"):
        assert f"metadata field '{field}'" in message


def test_extra_attributes_are_added_and_win():
    built = document(meta(Attributes={"_data_source_id": "mine", "dept": "HR"}),
                     extra_attributes={"_data_source_id": "ds", "_data_source_sync_job_execution_id": "run-1"})
    assert built["Attributes"] == [
        {"Key": "_data_source_id", "Value": {"StringValue": "ds"}},
        {"Key": "dept", "Value": {"StringValue": "HR"}},
        {"Key": "_data_source_sync_job_execution_id", "Value": {"StringValue": "run-1"}},
    ]


def test_attribute_value_helper():
    assert attribute_value("n", 3) == {"LongValue": 3}


# --- document id, content type, body -------------------------------------------------------

def test_resolve_document_id():
    assert resolve_document_id(meta(DocumentId="emp-1"), KEY, PREFIX) == "emp-1"
    assert resolve_document_id(meta(), KEY, PREFIX) == "hr/emp-1"


def test_2049_char_document_id_fails_naming_document_id():
    result = failure(meta(), document_id="x" * 2049)
    assert result.error_message == "metadata field 'DocumentId': must be 1-2048 characters (got 2049)"


@pytest.mark.parametrize(("extension", "content_type"), sorted(CONTENT_TYPE_BY_EXTENSION.items()))
def test_content_type_from_extension(extension, content_type):
    assert document(meta(), key=f"P/batches/doc{extension}")["ContentType"] == content_type
    assert document(meta(), key=f"P/batches/doc{extension.upper()}")["ContentType"] == content_type


def test_every_content_type_has_an_extension():
    assert set(CONTENT_TYPE_BY_EXTENSION.values()) == set(CONTENT_TYPES)


def test_metadata_content_type_wins_over_extension():
    assert document(meta(ContentType="PLAIN_TEXT"), key="P/batches/x.json")["ContentType"] == "PLAIN_TEXT"
    assert document(meta(ContentType="PDF"), key="P/batches/x.bin")["ContentType"] == "PDF"


@pytest.mark.parametrize("key", ["P/batches/x.bin", "P/batches/noext", "P/batches/dir.pdf/file"])
def test_unknown_extension_without_content_type_names_content_type(key):
    assert content_type_for(key) is None
    assert failure(meta(), key=key).error_message.startswith("metadata field 'ContentType': missing")


def test_inline_document_shape():
    assert document(meta(Title="Ada", Attributes={"dept": "HR"}), body=b"{}") == {
        "Id": "emp-1", "Title": "Ada", "Blob": b"{}", "ContentType": "JSON",
        "Attributes": [{"Key": "dept", "Value": {"StringValue": "HR"}}],
    }


def test_s3_document_shape():
    assert document(meta(), body=None, s3_path=("bucket", KEY), size=10) == {
        "Id": "emp-1", "S3Path": {"Bucket": "bucket", "Key": KEY}, "ContentType": "JSON",
    }


def test_empty_document_is_an_invalid_request():
    for kwargs in ({"body": b""}, {"body": None, "s3_path": ("bucket", KEY), "size": 0}):
        result = failure(meta(), **kwargs)
        assert (result.error_code, result.error_message) == (
            "InvalidRequest", "document is empty (0 bytes); Kendra rejects empty documents")


def test_text_that_is_not_utf8_is_left_to_kendra():
    assert document(meta(), key="P/batches/a.txt", body=b"\xff\xfe")["Blob"] == b"\xff\xfe"


def test_body_and_s3_path_are_exclusive():
    with pytest.raises(ValueError, match="exactly one"):
        to_document(meta(), document_id="d", key=KEY)
    with pytest.raises(ValueError, match="exactly one"):
        to_document(meta(), document_id="d", key=KEY, body=b"x", s3_path=("b", KEY))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@given(st.binary(max_size=200))
def test_parse_metadata_never_raises_on_bytes(raw):
    assert isinstance(parse_metadata(raw, document_id_hint="h"), DocumentMetadata | Failure)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5), st.frozensets(st.text(max_size=8)))
def test_to_document_never_raises_on_any_attributes(attrs, date_fields):
    parsed = meta(Attributes=attrs)
    result = to_document(parsed, document_id="d", key=KEY, body=b"x", date_fields=date_fields)
    assert isinstance(result, dict | Failure)


# -- Kendra limits checked before sending, and connector fields ------------------------------------

def principals(n: int) -> list[dict]:
    return [{"Name": f"user-{i}", "Type": "USER", "Access": "ALLOW"} for i in range(n)]


def test_200_acl_entries_pass_and_201_fail_naming_the_field_and_the_limit() -> None:
    assert len(document(meta(AccessControlList=principals(200)))["AccessControlList"]) == 200
    failure = parse_failure(json.dumps({"DocumentId": "d-1", "AccessControlList": principals(201)}).encode())
    assert failure.document_id == "d-1"
    assert "'AccessControlList'" in failure.error_message and "200" in failure.error_message


def test_string_lists_hold_at_most_ten_strings() -> None:
    assert attribute_value("tags", [str(i) for i in range(10)]) == {"StringListValue": [str(i) for i in range(10)]}
    failure = to_document(meta(Attributes={"tags": [str(i) for i in range(11)]}), document_id="d", key=KEY, body=b"x")
    assert isinstance(failure, Failure) and failure.error_code == ErrorCode.INVALID_METADATA
    assert "'Attributes.tags'" in failure.error_message and "at most 10" in failure.error_message


def test_string_values_over_the_model_limit_name_the_field() -> None:
    failure = to_document(meta(Attributes={"dept": "x" * 2049}), document_id="d", key=KEY, body=b"x")
    assert isinstance(failure, Failure) and "'Attributes.dept'" in failure.error_message
    assert "1-2048" in failure.error_message


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("_view_count", "12", "an integer (LONG_VALUE)"),
    ("_authors", "Ann", "a list of strings (STRING_LIST_VALUE)"),
    ("_category", 3, "a string (STRING_VALUE)"),
    ("_language_code", ["ja"], "a string (STRING_VALUE)"),
    ("_created_at", 1700000000, "ISO-8601"),
])
def test_reserved_attributes_must_have_their_type(name, value, expected) -> None:
    failure = to_document(meta(Attributes={name: value}), document_id="d", key=KEY, body=b"x")
    assert isinstance(failure, Failure) and failure.error_code == ErrorCode.INVALID_METADATA
    assert f"'Attributes.{name}'" in failure.error_message and expected in failure.error_message


def test_reserved_attributes_of_the_right_type_pass() -> None:
    built = document(meta(Attributes={"_view_count": 3, "_authors": ["Ann"], "_category": "hr"}))
    assert {a["Key"] for a in built["Attributes"]} == {"_view_count", "_authors", "_category"}


def test_access_control_configuration_id_is_accepted_and_sent() -> None:
    built = document(meta(AccessControlConfigurationId="acl-config-1"))
    assert built["AccessControlConfigurationId"] == "acl-config-1"
    failure = parse_failure(json.dumps({"AccessControlConfigurationId": "x" * 37}).encode())
    assert "AccessControlConfigurationId" in failure.error_message


def test_default_language_code_applies_only_when_the_metadata_sets_none() -> None:
    built = document(meta(), default_language_code="ja")
    assert built["Attributes"] == [{"Key": "_language_code", "Value": {"StringValue": "ja"}}]
    own = document(meta(Attributes={"_language_code": "fr"}), default_language_code="ja")
    assert own["Attributes"] == [{"Key": "_language_code", "Value": {"StringValue": "fr"}}]


def test_access_control_file_entries_apply_unless_the_metadata_has_its_own_list() -> None:
    entries = [{"Name": "hr", "Type": "GROUP", "Access": "ALLOW"}]
    assert document(meta(), access_control_list=entries)["AccessControlList"] == entries
    own = principals(1)
    assert document(meta(AccessControlList=own), access_control_list=entries)["AccessControlList"] == own
    levels = [{"PrincipalList": own}]
    assert "AccessControlList" not in document(meta(HierarchicalAccessControlList=levels), access_control_list=entries)
    assert "AccessControlList" not in document(meta(AccessControlConfigurationId="c-1"), access_control_list=entries)


def test_declared_document_id() -> None:
    from kendra_ingest.metadata import declared_document_id

    assert declared_document_id(b'{"DocumentId": "emp-7", "Title": 3}') == "emp-7"
    assert declared_document_id(b'{"DocumentId": ""}') is None
    assert declared_document_id(b"not json") is None


def test_dates_are_sent_in_utc_and_serialize():
    import botocore.session
    from botocore.serialize import create_serializer

    built = document(meta(Attributes={"_created_at": "0001-01-01T00:00:00Z",
                                      "_last_updated_at": "2025-10-05T14:00:00+02:00"}))
    dates = [a["Value"]["DateValue"] for a in built["Attributes"]]
    assert dates == [datetime(1, 1, 1, tzinfo=UTC), datetime(2025, 10, 5, 12, tzinfo=UTC)]
    assert all(d.utcoffset() == timedelta(0) for d in dates)
    model = botocore.session.get_session().get_service_model("kendra").operation_model("BatchPutDocument")
    create_serializer("json").serialize_to_request({"IndexId": "i" * 36, "Documents": [{**built, "Blob": b"x"}]}, model)


@pytest.mark.parametrize(("raw", "message"), [
    (rb'{"DocumentId": "a\ud800"}', "metadata field 'DocumentId': holds the escape \\ud800"),
    (rb'{"Attributes": {"tags": ["ok", "\udfff"]}}', "metadata field 'Attributes.tags[1]': holds the escape \\udfff"),
    (rb'{"Attributes": {"k\udc00": 1}}', "metadata field 'Attributes': a key holds the escape \\udc00"),
])
def test_a_lone_surrogate_escape_is_invalid_metadata_and_the_message_encodes(raw, message):
    # "\ud800" is valid JSON but no character: it could not be written to failures.csv as UTF-8.
    result = parse_failure(raw)
    assert result.error_message.startswith(message) and result.document_id == "hint"
    result.error_message.encode("utf-8")


def test_an_escaped_surrogate_pair_is_one_character():
    assert meta(Title="\U0001f600").title == "\U0001f600"
    assert parse_metadata(rb'{"Title": "\ud83d\ude00"}', document_id_hint="h").title == "\U0001f600"
