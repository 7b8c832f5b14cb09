"""Reading user-written JSON (manifests, metadata files) with one-line, field-naming error messages.

Both the manifest and the Kendra metadata files are written by people; when they are wrong the report
must say which field broke which rule, in one readable line.

Example::

    try:
        obj = load_json_object(raw, what="manifest", strip_bom=True)
    except JsonInputError as exc:
        print(exc.message)   # "manifest is not valid JSON: line 1 column 5: Expecting value"
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

_MAX_SHOWN = 60  # characters of an offending value quoted back in a message
#: Error types whose message states the size that broke the rule: the value itself is not quoted back.
MEASURED_ERRORS = frozenset({"too_long", "too_short", "document_id_bytes"})


class JsonInputError(ValueError):
    """User-written JSON that cannot be read as an object; ``message`` is one readable line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def load_json_object(raw: bytes, *, what: str, strip_bom: bool) -> dict[str, Any]:
    """Decode ``raw`` as a UTF-8 JSON object; duplicate keys and NaN/Infinity are errors.

    ``strip_bom`` accepts (and drops) a leading UTF-8 byte order mark; otherwise a BOM is an error,
    because Kendra requires metadata files in UTF-8 without one.
    """
    value = load_json(raw, what=what, strip_bom=strip_bom)
    if not isinstance(value, dict):
        raise JsonInputError(f"{what} must be a JSON object (got {json_type(value)})")
    return value


def load_json(raw: bytes, *, what: str, strip_bom: bool, shape: str = "a JSON object") -> Any:
    """Decode ``raw`` as any UTF-8 JSON value, with the rules of :func:`load_json_object`.

    ``shape`` says what the file should hold, for the message about an empty one.
    """
    if raw.startswith(codecs.BOM_UTF8):
        if not strip_bom:
            raise JsonInputError(f"{what} starts with a UTF-8 byte order mark; save it as UTF-8 without BOM")
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonInputError(
            f"{what} is not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}"
        ) from None

    def reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                raise JsonInputError(f"{what} field {key!r}: appears more than once")
            obj[key] = value
        return obj

    def reject_constant(name: str) -> Any:
        raise JsonInputError(f"{what} is not valid JSON: {name} is not a JSON number")

    if not text.strip():
        # json's "Expecting value" at line 1 column 1 would not say what is wrong.
        size = f"{len(raw)} bytes of whitespace" if raw else "0 bytes"
        raise JsonInputError(f"{what} is empty ({size}); it must be {shape}")
    try:
        value = json.loads(text, object_pairs_hook=reject_duplicates, parse_constant=reject_constant)
    except json.JSONDecodeError as exc:
        raise JsonInputError(
            f"{what} is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if (where := _surrogate_at(value)) is not None:
        # JSON lets "\ud800" through, but it is no character: it cannot be written as UTF-8 to a report,
        # a table or a request, and would break the job far from its cause.
        path, char, in_key = where
        field = f"{what} field '{path}'" if path else what
        holder = "a key holds" if in_key else "holds"
        raise JsonInputError(f"{field}: {holder} the escape \\u{ord(char):04x}, half of a UTF-16 surrogate pair, "
                             "which is not a character")
    return value


def _surrogate_at(value: Any, loc: tuple[int | str, ...] = ()) -> tuple[str, str, bool] | None:
    """(field path, character, in a key) of the first lone surrogate in a decoded JSON value.

    The path never contains the surrogate itself: for one in a key, it names the object holding the key.
    """
    if isinstance(value, str):
        char = _surrogate(value)
        return (field_path(loc), char, False) if char else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and (char := _surrogate(key)):
            return field_path(loc), char, True
        if found := _surrogate_at(item, (*loc, key)):
            return found
    return None


def _surrogate(text: str) -> str | None:
    return next((c for c in text if "\ud800" <= c <= "\udfff"), None)


def describe_errors(exc: ValidationError, *, what: str, allowed: Iterable[str] = ()) -> str:
    """All of a pydantic error's problems as one line: ``<what> field '<path>': <rule> (got <value>)``.

    ``allowed`` lists the top-level keys, quoted back when an unknown key is found.
    """
    allowed = tuple(allowed)
    parts = []
    for error in exc.errors(include_url=False):
        path = field_path(error["loc"])
        if error["type"] == "extra_forbidden":
            rule = "unknown key"
            if allowed and len(error["loc"]) == 1:
                rule += f" (allowed: {', '.join(allowed)})"
        elif error["type"] == "missing":
            rule = "required"
        elif error["type"] in MEASURED_ERRORS:  # the message already gives the count
            rule = _lower_first(error["msg"])
        else:
            rule = f"{_lower_first(error['msg'])} (got {_got(error['type'], error['input'])})"
        parts.append(f"{what} field '{path}': {rule}" if path else f"{what}: {rule}")
    return "; ".join(parts)


def field_path(loc: tuple[int | str, ...]) -> str:
    """``('AccessControlList', 0, 'Type')`` -> ``AccessControlList[0].Type``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def shown(value: Any) -> str:
    """A short ``repr`` of a user's value for an error message; JSON's spelling for null, true and false,
    arrays and objects (the user wrote JSON, not Python)."""
    if value is None or isinstance(value, (bool, list, dict)):
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(value)
    else:
        text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _got(error_type: str, value: Any) -> str:
    # For length rules the length is the useful part; a 2,049-character id quoted back is noise.
    if error_type in ("string_too_long", "string_too_short"):
        return f"{len(value)} characters"
    return shown(value)


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type: object, array, string, number, boolean, null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "array", str: "string", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )


def _lower_first(text: str) -> str:
    # pydantic messages read "Input should be ..."; inside our sentence lower case reads better.
    return text[:1].lower() + text[1:]
