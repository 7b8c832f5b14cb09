"""Short, human descriptions of errors that reach a report (a Step Functions ``{"Error", "Cause"}``).

A Lambda error's ``Cause`` is JSON holding ``errorType``, ``errorMessage`` and a ``stackTrace``. A report
row or a summary keeps only the type and the first line of the message, never a traceback or raw JSON:
those stay in the failed function's logs, keyed by ``jobId``.

Example::

    describe({"Error": "KendraError", "Cause": '{"errorType": "KendraError", "errorMessage": "boom"}'})
    # 'KendraError: boom'
"""

from __future__ import annotations

import json
from typing import Any

#: A description quotes at most this much of the error's message (the logs have all of it).
MAX_MESSAGE_CHARS = 200


def describe(error: dict[str, Any]) -> str:
    """``<type>: <first line of the message>`` from a Step Functions error result."""
    kind, cause = str(error.get("Error") or "Error"), error.get("Cause") or ""
    try:
        parsed = json.loads(cause) if isinstance(cause, str) else cause
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        kind = str(parsed.get("errorType") or kind)
        cause = parsed.get("errorMessage") or ""
    lines = str(cause).strip().splitlines()
    text = lines[0].strip() if lines else ""
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 3] + "..."
    return f"{kind}: {text}" if text else kind
