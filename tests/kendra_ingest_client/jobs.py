"""Job folders for the client's tests, built on the fly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def make_job(root: Path, job_id: str, docs: dict[str, dict[str, Any] | None], **manifest: Any) -> Path:
    """A job folder: ``docs`` maps a name under batches/ to its metadata (None: no metadata file)."""
    folder = root / job_id
    (folder / "batches").mkdir(parents=True)
    (folder / "_control").mkdir()
    for name, meta in docs.items():
        (folder / "batches" / name).write_text(f"the text of {name}")
        if meta is not None:
            (folder / "batches" / f"{name}.metadata.json").write_text(json.dumps(meta))
    (folder / "_control" / "manifest.json").write_text(json.dumps({"schemaVersion": 1, "jobId": job_id, **manifest}))
    return folder
