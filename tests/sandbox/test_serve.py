"""``python -m sandbox serve``: the deployed sandbox behind a local endpoint, jobs run from any S3 client."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import boto3
import pytest

from sandbox import __main__ as cli
from tests.sandbox.serving import FAKE_AWS, ROOT, served

SAMPLE = ROOT / "sample" / "job"
#: Stack outputs of every option (the stack output contract).
ALWAYS = {"option", "ingestion_bucket", "reports_bucket", "manifest_key_pattern", "notification_topic_arn",
          "lock_table", "documents_table", "kendra_index_id", "function_names"}


def _s3(endpoint_url: str) -> object:
    return boto3.client("s3", endpoint_url=endpoint_url, region_name="us-east-1",
                        aws_access_key_id=FAKE_AWS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=FAKE_AWS["AWS_SECRET_ACCESS_KEY"])


def test_an_upload_through_the_endpoint_runs_the_job_and_shutdown_writes_the_index(tmp_path: Path) -> None:
    with served("sfn", tmp_path / "serve") as server:
        outputs = server.outputs
        assert set(outputs) >= ALWAYS and "state_machine_arn" in outputs
        assert outputs["endpoint_url"].startswith("http://127.0.0.1:")
        s3 = _s3(server.endpoint_url)
        prefix = "teams/phonebook/2025-10-05"
        for path in sorted(SAMPLE.rglob("*")):
            rel = path.relative_to(SAMPLE).as_posix()
            if path.is_file() and not rel.startswith("_control/"):
                s3.put_object(Bucket=outputs["ingestion_bucket"], Key=f"{prefix}/{rel}", Body=path.read_bytes())
        manifest = json.loads((SAMPLE / "_control" / "manifest.json").read_text())
        s3.put_object(Bucket=outputs["ingestion_bucket"], Key=f"{prefix}/_control/manifest.json",
                      Body=json.dumps(manifest).encode())
        key = f"_reports/{manifest['jobId']}/summary.json"
        deadline = time.monotonic() + 120
        while True:
            try:
                summary = json.loads(s3.get_object(Bucket=outputs["reports_bucket"], Key=key)["Body"].read())
                break
            except s3.exceptions.NoSuchKey:
                assert time.monotonic() < deadline, server.log.read_text()
                time.sleep(0.2)
        assert summary["status"] == "COMPLETED_WITH_FAILURES" and summary["documents"]["put"] > 0
        assert server.stop() == 0
    log = server.log.read_text()
    assert f"==> {manifest['jobId']}: COMPLETED_WITH_FAILURES" in log  # one result line per job
    assert "Traceback" not in log
    index = json.loads((tmp_path / "serve" / "index.json").read_text())
    calls = json.loads((tmp_path / "serve" / "calls.json").read_text())
    indexed = [doc_id for doc_id, doc in index["documents"].items() if doc["status"] == "INDEXED"]
    assert len(indexed) >= summary["documents"]["put"] - summary["deletes"]["deleted"] > 0
    assert {c["operation"] for c in calls} >= {"BatchPutDocument", "BatchGetDocumentStatus"}


def test_a_port_in_use_is_one_line_before_deploying(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli.main(["serve", "--option", "sfn", "--port", str(port), "--outputs", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err
    assert not (tmp_path / "o.json").exists()


@pytest.mark.parametrize("args", [["--port", "99999"], ["--port", "x"], ["--option", "ecs"]])
def test_bad_arguments_are_a_usage_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    base = {"--option": "sfn", "--outputs": str(tmp_path / "o.json")}
    given = dict(zip(args[::2], args[1::2], strict=True))
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", *[x for k, v in {**base, **given}.items() for x in (k, v)]])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" in err


def test_outputs_naming_a_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--option", "sqs", "--outputs", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
