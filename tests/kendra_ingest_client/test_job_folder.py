"""What ``submit`` uploads from a job folder, and the document count it puts in the manifest."""

from __future__ import annotations

import json
import tomllib
from importlib import import_module
from pathlib import Path

import pytest

from kendra_ingest_client.job_folder import JobFolder, is_document
from tests.kendra_ingest_client.jobs import make_job
from tests.sandbox.serving import ROOT


def test_every_file_but_the_manifest_is_uploaded_and_the_manifest_counts_the_documents(tmp_path: Path) -> None:
    folder = make_job(tmp_path, "hr-1", {"a.txt": {"Title": "A"}, "b.txt": None}, deletesKey="deletes.txt",
                      expectedDocuments=99)
    (folder / "deletes.txt").write_text("emp-1\n")
    (folder / "batches" / ".DS_Store").write_bytes(b"\0")
    (folder / "_control" / "notes.txt").write_text("never uploaded")
    job = JobFolder.scan(folder, job_id=None)
    assert [u.relative for u in job.uploads] == ["batches/a.txt", "batches/a.txt.metadata.json", "batches/b.txt",
                                                 "deletes.txt"]
    assert job.documents == 2 and job.hidden == 1
    manifest = json.loads(job.manifest_bytes())
    assert manifest == {"schemaVersion": 1, "jobId": "hr-1", "deletesKey": "deletes.txt", "expectedDocuments": 2}


def test_job_id_overrides_the_manifest(tmp_path: Path) -> None:
    job = JobFolder.scan(make_job(tmp_path, "hr-1", {"a.txt": {}}), job_id="hr-2")
    assert job.job_id == "hr-2" and json.loads(job.manifest_bytes())["jobId"] == "hr-2"


def test_a_delete_only_job_is_a_job(tmp_path: Path) -> None:
    job = JobFolder.scan(make_job(tmp_path, "hr-1", {}, deletes=["emp-1"]), job_id=None)
    assert job.documents == 0 and job.uploads == ()


@pytest.mark.parametrize(("relative", "manifest", "document"), [
    ("batches/a.txt", {}, True),
    ("batches/x/y/a.pdf", {}, True),
    ("batches/a.txt.metadata.json", {}, False),
    ("deletes.txt", {}, False),
    ("other/a.txt", {}, False),
    ("a.txt", {"documentsPrefix": ""}, True),
    ("deletes.txt", {"documentsPrefix": "", "deletesKey": "deletes.txt"}, False),
    ("acl/s3-acl.json", {"documentsPrefix": "", "accessControlKey": "acl/s3-acl.json"}, False),
    ("metadata/a.txt.metadata.json", {"documentsPrefix": "", "metadataPrefix": "metadata/"}, False),
    ("_control/other.json", {"documentsPrefix": ""}, False),
    ("docs/a.pdf", {"documentsPrefix": "docs/", "include": ["**/*.pdf"]}, True),
    # Excluded objects are documents found (the pipeline reports them excluded): counted all the same.
    ("docs/a.html", {"documentsPrefix": "docs/", "include": ["**/*.pdf"]}, True),
    ("docs/drafts/a.pdf", {"documentsPrefix": "docs/", "include": ["**/*.pdf"], "exclude": ["drafts/**"]}, True),
])
def test_which_objects_are_documents(relative: str, manifest: dict[str, object], document: bool) -> None:
    assert is_document(relative, manifest) is document


def test_the_console_script_is_declared_and_importable() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    module, _, name = project["project"]["scripts"]["kendra-ingest"].partition(":")
    assert callable(getattr(import_module(module), name))
    assert module.split(".")[0] in project["tool"]["setuptools"]["packages"]
