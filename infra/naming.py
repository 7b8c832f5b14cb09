"""Physical names: readable, derived from project and stack, and always within AWS length limits."""

from __future__ import annotations

import hashlib
import re

#: Lambda function names (and so ``/aws/lambda/<name>`` log groups) are at most 64 characters.
MAX_FUNCTION_NAME_LENGTH = 64
#: SQS queue names, ``.fifo`` suffix included, are at most 80 characters.
MAX_QUEUE_NAME_LENGTH = 80
#: Step Functions state machine names are at most 80 characters.
MAX_STATE_MACHINE_NAME_LENGTH = 80
#: CloudWatch dashboard names are at most 255 characters (letters, digits, ``-``, ``_``).
MAX_DASHBOARD_NAME_LENGTH = 255
#: CloudWatch alarm names are at most 255 characters.
MAX_ALARM_NAME_LENGTH = 255

_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")
_DIGEST_LENGTH = 6


def physical_name(prefix: str, suffix: str, *, max_length: int) -> str:
    """``<prefix>-<suffix>`` with unsafe characters replaced by ``-``; a too long prefix is shortened
    and given a short digest of the full prefix, so names stay unique per stack.

    Example::

        physical_name("kendra-ingestion-sfn", "process-batch", max_length=64)
        # 'kendra-ingestion-sfn-process-batch'
    """
    clean_prefix = _UNSAFE.sub("-", prefix).strip("-")
    clean_suffix = _UNSAFE.sub("-", suffix).strip("-")
    name = f"{clean_prefix}-{clean_suffix}"
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(clean_prefix.encode()).hexdigest()[:_DIGEST_LENGTH]
    room = max_length - len(clean_suffix) - len(digest) - 2
    if room < 1:
        raise ValueError(f"suffix {suffix!r} leaves no room for a prefix within {max_length} characters")
    return f"{clean_prefix[:room].rstrip('-')}-{digest}-{clean_suffix}"
