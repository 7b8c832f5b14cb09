"""A local job folder: what ``submit`` uploads, how many documents that is, and the manifest it writes.

The folder mirrors the job prefix ``P``: ``DIR/batches/**`` (documents and their ``.metadata.json``),
optional files such as ``DIR/deletes.txt``, and ``DIR/_control/manifest.json``. Everything but
``_control/`` is uploaded as is; the manifest goes last, with ``expectedDocuments`` set to the number
of documents uploaded, so the job fails fast instead of running on a partial upload.

Example::

    folder = JobFolder.scan(Path("sample/job"), job_id=None)
    folder.documents            # how many documents the job will find
    folder.manifest_bytes()     # the manifest to upload last
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kendra_ingest_client.stack import IngestError

MANIFEST = "_control/manifest.json"
CONTROL = "_control/"
METADATA_SUFFIX = ".metadata.json"
DEFAULT_DOCUMENTS_PREFIX = "batches/"
#: The manifest's job id rule: it becomes a path segment of the report keys.
JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


@dataclass(frozen=True, kw_only=True)
class Upload:
    """One file of the folder and the key it gets under the job prefix."""

    path: Path
    relative: str
    size: int


@dataclass(frozen=True, kw_only=True)
class JobFolder:
    """A scanned job folder. Build it with :meth:`scan`, which checks it can start a job."""

    root: Path
    job_id: str
    manifest: dict[str, Any]
    uploads: tuple[Upload, ...]
    documents: int
    #: Names starting with a dot (``.DS_Store``, editor files): not part of any job, never uploaded.
    hidden: int

    @classmethod
    def scan(cls, root: Path, *, job_id: str | None) -> JobFolder:
        """Read ``root``; raises :class:`IngestError` when it cannot be a job (nothing is uploaded then)."""
        if not root.is_dir():
            raise IngestError(f"{root} is not a folder" if root.exists() else f"job folder {root} does not exist")
        manifest = _read_manifest(root / MANIFEST)
        if job_id is not None:
            manifest["jobId"] = job_id
        found = manifest.get("jobId")
        if not isinstance(found, str) or not JOB_ID.fullmatch(found):
            what = "has no jobId" if found is None else f"has jobId {found!r}, which is not valid"
            raise IngestError(f"{root / MANIFEST} {what}: give --job-id J (1-80 characters of [A-Za-z0-9._-], "
                              "starting with a letter or digit)")
        uploads: list[Upload] = []
        hidden = 0
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root).as_posix()
            if not path.is_file() or relative.startswith(CONTROL):
                continue
            if any(part.startswith(".") for part in relative.split("/")):
                hidden += 1
                continue
            uploads.append(Upload(path=path, relative=relative, size=path.stat().st_size))
        documents = sum(is_document(u.relative, manifest) for u in uploads)
        if documents == 0 and not manifest.get("deletes") and not manifest.get("deletesKey"):
            where = manifest.get("documentsPrefix", DEFAULT_DOCUMENTS_PREFIX) or "the folder"
            raise IngestError(f"{root} has no documents under {where} and no deletes: nothing to submit")
        return cls(root=root, job_id=found, manifest=manifest, uploads=tuple(uploads), documents=documents,
                   hidden=hidden)

    def manifest_bytes(self) -> bytes:
        """The manifest as uploaded: the folder's own, with ``expectedDocuments`` (and ``jobId``) set."""
        return json.dumps({**self.manifest, "expectedDocuments": self.documents}, indent=2).encode()


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IngestError(f"{path.parent.parent} has no {MANIFEST} (the manifest that starts the job)") from None
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc}") from None
    try:
        # The pipeline accepts a leading byte order mark (editors on Windows add one); so does the client.
        manifest = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise IngestError(f"{path} is not UTF-8 JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise IngestError(f"{path} must be a JSON object")
    # Anything else (unknown keys, bad types) is the pipeline's to judge: it reports why the job FAILED.
    return manifest


def is_document(relative: str, manifest: dict[str, Any]) -> bool:
    """Whether the object ``P/<relative>`` is one of the job's documents, as the pipeline counts them.

    Documents are the objects under ``documentsPrefix`` (default ``batches/``; ``""`` is the whole
    prefix) that are not reserved: ``_control/**``, the ``deletesKey`` and ``accessControlKey`` files,
    the ``metadataPrefix`` folder and ``*.metadata.json``. Objects that ``include`` / ``exclude`` leave
    out are counted too: the pipeline counts them as documents found (and reports them excluded), so an
    upload's count is the same whatever the patterns.
    """
    prefix = _text(manifest.get("documentsPrefix"), DEFAULT_DOCUMENTS_PREFIX)
    metadata_prefix = _text(manifest.get("metadataPrefix"), "")
    reserved = {manifest.get("deletesKey"), manifest.get("accessControlKey")}
    in_metadata = bool(metadata_prefix) and relative.startswith(metadata_prefix)
    return (relative.startswith(prefix) and not relative.startswith(CONTROL) and relative not in reserved
            and not relative.endswith(METADATA_SUFFIX) and not in_metadata)


def _text(value: Any, default: str) -> str:
    return value if isinstance(value, str) else default
