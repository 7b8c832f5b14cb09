"""Shared helpers for the end-to-end tests: job folders built on the fly, and the invariants."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any


def make_job(root: Path, job_id: str, docs: dict[str, tuple[str | bytes, dict | None]], *,
             source: str | None = None, deletes: list[str] | None = None, **manifest: Any) -> Path:
    """A job folder: ``docs`` maps a key under batches/ to (body, metadata or None)."""
    folder = root / job_id
    for rel, (body, meta) in docs.items():
        path = folder / "batches" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body.encode() if isinstance(body, str) else body)
        if meta is not None:
            (path.parent / f"{path.name}.metadata.json").write_text(json.dumps(meta))
    body = {"schemaVersion": 1, "jobId": job_id, **manifest}
    if source:
        body["source"] = source
    if deletes:
        body["deletes"] = deletes
    (folder / "_control").mkdir(parents=True, exist_ok=True)
    (folder / "_control" / "manifest.json").write_text(json.dumps(body))
    return folder


def rows(failures: bytes) -> list[dict[str, str]]:
    text = failures.decode()
    assert text.startswith("jobId,documentId,errorCode,errorMessage\r\n")
    return list(csv.DictReader(io.StringIO(text)))


def assert_conserved(summary: dict[str, Any], failures: bytes) -> None:
    """DESIGN section 6: every document and delete is accounted for exactly once."""
    d, x = summary["documents"], summary["deletes"]
    assert d["requested"] == d["put"] + d["skippedUnchanged"] + d["failed"], summary
    assert x["requested"] == x["deleted"] + x["failed"], summary
    assert len(rows(failures)) == d["failed"] + x["failed"], summary
