"""``kendra-ingest`` on bad input: one clear line, exit 3, nothing uploaded; an interrupted upload starts no job."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from kendra_ingest_client import cli
from kendra_ingest_client.job_folder import JobFolder
from kendra_ingest_client.stack import StackOutputs
from kendra_ingest_client.submit import Interrupted, check_prefix, submit
from tests.kendra_ingest_client.jobs import make_job

OUTPUTS = {"ingestion_bucket": "in-bucket", "reports_bucket": "reports-bucket",
           "notification_topic_arn": "arn:aws:sns:eu-west-1:123456789012:topic"}


@pytest.fixture
def outputs_file(tmp_path: Path) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS))
    return path


@pytest.fixture(autouse=True)
def _no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials and no AWS configuration at all: a test that reached AWS would fail loudly."""
    import os

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


def test_a_missing_folder(tmp_path: Path, outputs_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["submit", str(tmp_path / "nowhere"), "--stack-outputs", str(outputs_file)]) == 3
    line = _one_error_line(capsys)
    assert "job folder" in line and "nowhere does not exist" in line


def test_a_folder_without_documents(tmp_path: Path, outputs_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_job(tmp_path, "empty-1", {})
    assert cli.main(["submit", str(folder), "--stack-outputs", str(outputs_file)]) == 3
    assert "has no documents under batches/ and no deletes" in _one_error_line(capsys)


def test_a_folder_without_a_manifest(tmp_path: Path, outputs_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "job" / "batches").mkdir(parents=True)
    assert cli.main(["submit", str(tmp_path / "job"), "--stack-outputs", str(outputs_file)]) == 3
    assert "has no _control/manifest.json" in _one_error_line(capsys)


@pytest.mark.parametrize(("content", "says"), [
    (None, "does not exist"),
    ("not json", "it is not JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"option": "sfn"}', "no ingestion_bucket, reports_bucket"),
])
def test_a_stack_outputs_file_that_is_not_one(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              content: str | None, says: str) -> None:
    folder = make_job(tmp_path, "ok-1", {"a.txt": {"Title": "A"}})
    path = tmp_path / "o.json"
    if content is not None:
        path.write_text(content)
    assert cli.main(["submit", str(folder), "--stack-outputs", str(path)]) == 3
    assert says in _one_error_line(capsys)


def test_no_credentials(tmp_path: Path, outputs_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_job(tmp_path, "ok-1", {"a.txt": {"Title": "A"}})
    assert cli.main(["submit", str(folder), "--stack-outputs", str(outputs_file), "--wait"]) == 3
    assert "no AWS credentials found" in _one_error_line(capsys)


@pytest.mark.parametrize("argv", [
    ["submit"],
    ["submit", "DIR", "--stack-outputs", "o.json", "--job-id", "../up"],
    ["submit", "DIR", "--stack-outputs", "o.json", "--timeout", "soon"],
    ["status"],
    ["report", "J"],
    ["frobnicate"],
])
def test_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 3
    assert "--help" in _one_error_line(capsys)


def test_a_manifest_without_a_job_id_asks_for_one(tmp_path: Path, outputs_file: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_job(tmp_path, "x", {"a.txt": {"Title": "A"}})
    (folder / "_control" / "manifest.json").write_text('{"schemaVersion": 1}')
    assert cli.main(["submit", str(folder), "--stack-outputs", str(outputs_file)]) == 3
    assert "has no jobId: give --job-id J" in _one_error_line(capsys)


class _S3:
    """Records puts; the ``interrupt_at``-th put raises KeyboardInterrupt, as Ctrl-C would."""

    def __init__(self, interrupt_at: int) -> None:
        self.keys: list[str] = []
        self._lock = threading.Lock()
        self._interrupt_at = interrupt_at

    def put_object(self, *, Bucket: str, Key: str, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            if len(self.keys) + 1 == self._interrupt_at:
                raise KeyboardInterrupt
            self.keys.append(Key)
        return {}

    def head_object(self, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("the summary is only looked at once every file went up")


def test_an_interrupted_upload_writes_no_manifest_and_says_so(tmp_path: Path) -> None:
    folder = JobFolder.scan(make_job(tmp_path, "ctrl-c", {f"d{i}.txt": {"Title": "D"} for i in range(20)}),
                            job_id=None)
    s3 = _S3(interrupt_at=5)
    with pytest.raises(Interrupted, match="before the manifest was written: no job was started"):
        submit(s3, StackOutputs.from_outputs(OUTPUTS, where="test"), folder, prefix="p", on_upload=lambda upload: None)
    assert s3.keys and not any(key.endswith("_control/manifest.json") for key in s3.keys)


class _WriterOnlyS3:
    """A team role with a source writer policy: s3:PutObject under its prefix, nothing else."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    @staticmethod
    def _denied(operation: str) -> ClientError:
        return ClientError({"Error": {"Code": "AccessDenied" if operation != "HeadObject" else "403"}}, operation)

    def get_paginator(self, operation: str) -> Any:
        denied = self._denied("ListObjectsV2")

        class Paginator:
            def paginate(self, **kwargs: Any) -> Any:
                raise denied

        return Paginator()

    def head_object(self, **kwargs: Any) -> dict[str, Any]:
        raise self._denied("HeadObject")

    def put_object(self, *, Key: str, **kwargs: Any) -> dict[str, Any]:
        self.keys.append(Key)
        return {}


def test_a_writer_only_role_can_still_submit(tmp_path: Path) -> None:
    folder = JobFolder.scan(make_job(tmp_path, "hr-1", {"a.txt": {"Title": "A"}}), job_id=None)
    stack, s3 = StackOutputs.from_outputs(OUTPUTS, where="test"), _WriterOnlyS3()
    assert check_prefix(s3, stack, folder, "teams/hr/1") is False  # not checked, not refused
    job = submit(s3, stack, folder, prefix="teams/hr/1", on_upload=lambda upload: None)
    assert s3.keys[-1] == "teams/hr/1/_control/manifest.json" and job.previous_summary is None
