"""The deployed stack as the client sees it: its outputs file and an S3 client for its buckets.

Example::

    stack = StackOutputs.load(Path("outputs.json"))
    s3 = stack.s3_client(endpoint_url=None)   # credentials and region from the usual AWS environment
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The outputs the client needs (the stack's output contract names them; the rest are not used here).
REQUIRED_OUTPUTS = ("ingestion_bucket", "reports_bucket")


class IngestError(Exception):
    """Anything the user can fix (a bad argument or file, no credentials, an AWS error): one line, exit 3."""


@dataclass(frozen=True, kw_only=True)
class StackOutputs:
    """The stack outputs file: ``pulumi stack output --json``, or what ``sandbox serve`` writes."""

    ingestion_bucket: str
    reports_bucket: str
    option: str | None = None
    #: ``sandbox serve`` adds it; a deployed stack has none (boto3 then uses AWS's own endpoints).
    endpoint_url: str | None = None
    #: An ARN of the stack, whose region is the default when the environment names none.
    region_hint: str | None = None

    @classmethod
    def load(cls, path: Path) -> StackOutputs:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise IngestError(f"stack outputs file {path} does not exist (write it with "
                              "`pulumi stack output --json > FILE`, or use the one `sandbox serve` wrote)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise IngestError(f"cannot read stack outputs file {path}: {exc}") from None
        try:
            outputs: Any = json.loads(text)
        except ValueError:
            raise IngestError(f"{path} is not a stack outputs file: it is not JSON "
                              "(expected what `pulumi stack output --json` prints)") from None
        return cls.from_outputs(outputs, where=str(path))

    @classmethod
    def from_outputs(cls, outputs: Any, *, where: str) -> StackOutputs:
        """From the parsed outputs; ``where`` names their file in the error."""
        if not isinstance(outputs, dict):
            raise IngestError(f"{where} is not a stack outputs file: expected a JSON object of outputs")
        missing = [name for name in REQUIRED_OUTPUTS if not isinstance(outputs.get(name), str) or not outputs[name]]
        if missing:
            raise IngestError(f"{where} is not a stack outputs file of kendra-ingestion: no {', '.join(missing)}")
        endpoint = outputs.get("endpoint_url")
        return cls(
            ingestion_bucket=outputs["ingestion_bucket"], reports_bucket=outputs["reports_bucket"],
            option=outputs.get("option") if isinstance(outputs.get("option"), str) else None,
            endpoint_url=endpoint if isinstance(endpoint, str) and endpoint else None,
            region_hint=_region_of(outputs.get("notification_topic_arn")),
        )

    def s3_client(self, *, endpoint_url: str | None = None) -> Any:
        """An S3 client for the stack's buckets; raises :class:`IngestError` when there are no credentials.

        ``endpoint_url`` (else the file's ``endpoint_url``) points it at a local endpoint such as
        ``sandbox serve``, which takes any credentials.
        """
        import boto3
        from botocore.config import Config

        session = boto3.Session()
        # Checked before anything is uploaded: a submit must not stop half way for want of credentials.
        if session.get_credentials() is None:
            raise IngestError("no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY; `sandbox serve` accepts any values)")
        region = session.region_name or self.region_hint
        if region is None:
            raise IngestError("no AWS region set (set AWS_REGION or AWS_DEFAULT_REGION)")
        endpoint = endpoint_url or self.endpoint_url
        config = Config(
            retries={"mode": "standard", "max_attempts": 5},
            # A local endpoint is an IP address and port: bucket names cannot be host names there.
            s3={"addressing_style": "path"} if endpoint else {},
        )
        return session.client("s3", region_name=region, endpoint_url=endpoint, config=config)


def _region_of(arn: Any) -> str | None:
    """``us-east-1`` of ``arn:aws:sns:us-east-1:123456789012:topic``."""
    if not isinstance(arn, str):
        return None
    parts = arn.split(":")
    return parts[3] if len(parts) > 4 and parts[0] == "arn" and parts[3] else None
