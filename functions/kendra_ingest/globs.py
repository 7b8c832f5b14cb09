"""Glob patterns on S3 keys, as the S3 connector's inclusion and exclusion patterns use them.

``*`` and ``?`` stay within one path segment, ``**`` (a whole segment) spans any number of segments,
``[abc]`` / ``[!abc]`` are character classes. Python's ``fnmatch`` lets ``*`` cross ``/`` and never
refuses a pattern; a team's patterns must mean what the connector made them mean, and a typo must be an
error rather than a pattern that silently matches nothing.

Example::

    compile_glob("**/*.pdf").fullmatch("reports/2025/q1.pdf")   # a match
    compile_glob("*.pdf").fullmatch("reports/q1.pdf")           # None: * stays in one segment
    compile_glob("drafts/[abc")                                 # GlobError: unclosed '['
"""

from __future__ import annotations

import re

MAX_PATTERN_LENGTH = 1024


class GlobError(ValueError):
    """A pattern that does not parse; the message says why."""


def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regular expression matching exactly the keys ``pattern`` matches (use ``fullmatch``)."""
    if not pattern:
        raise GlobError("empty pattern")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise GlobError(f"longer than {MAX_PATTERN_LENGTH} characters")
    if pattern.startswith("/"):
        raise GlobError("must be relative (no leading '/')")
    segments = pattern.split("/")
    parts: list[str] = []
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:[^/]+/)*")
            continue
        if "**" in segment:
            raise GlobError("'**' must be a whole path segment (like 'a/**/b')")
        parts.append(_segment(segment) + ("" if last else "/"))
    return re.compile("".join(parts))


def _segment(segment: str) -> str:
    out, i = [], 0
    while i < len(segment):
        ch = segment[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = segment.find("]", i + 2 if segment[i + 1 : i + 2] in ("!", "^", "]") else i + 1)
            if end == -1:
                raise GlobError("unclosed '['")
            body = segment[i + 1 : end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            if not body:
                raise GlobError("empty character class '[]'")
            escaped = body.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[")
            out.append(f"[^/{escaped}]" if negate else f"[{escaped}]")
            i = end
        elif ch == "]":
            raise GlobError("']' without '['")
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)
