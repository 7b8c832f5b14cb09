"""``kendra-ingest`` end to end, in a subprocess, against ``python -m sandbox serve`` of each option."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.kendra_ingest_client.jobs import make_job
from tests.sandbox.serving import FAKE_AWS, ROOT, Served, clean_env, served

#: A job the sandbox finishes in a second or two, but not in TIMEOUT_SECONDS.
LARGE_JOB_DOCUMENTS = 200
TIMEOUT_SECONDS = 0.3


def kendra_ingest(*args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The client as a user runs it: its own process, credentials from the environment (no region)."""
    return subprocess.run([sys.executable, "-m", "kendra_ingest_client", *map(str, args)], cwd=ROOT,
                          env=clean_env(**FAKE_AWS, **env), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module", params=["sfn", "sqs"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One ``sandbox serve`` per option, shared by the module's tests (each job has its own source)."""
    with served(request.param, tmp_path_factory.mktemp(f"serve-{request.param}")) as s:
        yield s


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jobs")


def counts(stdout: str, row: str) -> list[str]:
    """The cells of the summary's ``documents`` or ``deletes`` row, whatever the table's border characters."""
    line = next(line for line in stdout.splitlines() if line.startswith(row))
    return line.replace("│", " ").replace("|", " ").split()[1:]


def _s3(server: Served) -> Any:
    return boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _keys(server: Served, prefix: str) -> list[str]:
    page = _s3(server).list_objects_v2(Bucket=server.outputs["ingestion_bucket"], Prefix=prefix)
    return [o["Key"] for o in page.get("Contents", [])]


def test_a_successful_job_exits_0_with_a_readable_summary(server: Served, jobs: Path) -> None:
    folder = make_job(jobs / server.outputs["option"], "good-1", {f"d{i}.txt": {"Title": f"D{i}"} for i in range(3)})
    done = kendra_ingest("submit", folder, "--stack-outputs", server.outputs_file, "--wait")
    assert done.returncode == 0, done.stderr
    assert "good-1: SUCCEEDED" in done.stdout and "No failures." in done.stdout
    assert counts(done.stdout, "documents")[:3] == ["3", "3", "0"]  # requested, put, unchanged
    assert "expectedDocuments 3" in done.stderr and "Traceback" not in done.stderr
    assert _keys(server, "jobs/good-1/") == [f"jobs/good-1/batches/{n}" for n in sorted(
        [f"d{i}.txt" for i in range(3)] + [f"d{i}.txt.metadata.json" for i in range(3)])]

    # The same job again at the same prefix is a new run (the manifest was archived): all unchanged.
    again = kendra_ingest("submit", folder, "--stack-outputs", server.outputs_file, "--wait")
    assert again.returncode == 0, again.stderr
    assert counts(again.stdout, "documents")[:3] == ["3", "0", "3"]


@pytest.fixture(scope="module")
def with_failures(server: Served, jobs: Path) -> tuple[str, subprocess.CompletedProcess[str]]:
    folder = make_job(jobs / server.outputs["option"], "mixed-1",
                      {"ok.txt": {"Title": "OK"}, "bare.txt": None},
                      deletes=["gone-1"])
    return "mixed-1", kendra_ingest("submit", folder, "--stack-outputs", server.outputs_file, "--wait",
                                    "--prefix", "teams/mixed/run-1/")


def test_a_job_with_failures_exits_1_and_shows_them_by_code(
        with_failures: tuple[str, subprocess.CompletedProcess[str]]) -> None:
    job_id, done = with_failures
    assert done.returncode == 1, done.stderr
    assert f"{job_id}: COMPLETED_WITH_FAILURES" in done.stdout
    assert "Failures by code" in done.stdout and "MissingMetadata" in done.stdout
    assert "failures.csv: s3://" in done.stdout


def test_status_and_report_of_a_finished_job(server: Served,
                                             with_failures: tuple[str, subprocess.CompletedProcess[str]]) -> None:
    job_id, _ = with_failures
    status = kendra_ingest("status", job_id, "--stack-outputs", server.outputs_file)
    assert status.returncode == 1 and f"{job_id}: COMPLETED_WITH_FAILURES" in status.stdout
    report = kendra_ingest("report", job_id, "--stack-outputs", server.outputs_file)
    assert report.returncode == 0
    assert "Failures (" in report.stdout and "bare" in report.stdout
    csv = kendra_ingest("report", job_id, "--stack-outputs", server.outputs_file, "--csv")
    assert csv.returncode == 0
    assert csv.stdout.startswith("jobId,documentId,errorCode,errorMessage")
    assert f"{job_id},bare,MissingMetadata," in csv.stdout
    missing = kendra_ingest("status", "never-submitted", "--stack-outputs", server.outputs_file)
    assert missing.returncode == 3 and "no summary yet" in missing.stderr
    missing = kendra_ingest("report", "never-submitted", "--stack-outputs", server.outputs_file)
    assert missing.returncode == 3 and len(missing.stderr.strip().splitlines()) == 1


def test_a_job_that_fails_exits_2(server: Served, jobs: Path) -> None:
    # The pipeline judges the manifest (the client only needs its jobId): an unknown key fails the job.
    folder = make_job(jobs / server.outputs["option"], "broken-1", {"a.txt": {"Title": "A"}}, colour="red")
    done = kendra_ingest("submit", folder, "--stack-outputs", server.outputs_file, "--wait")
    assert done.returncode == 2, done.stderr
    assert "broken-1: FAILED" in done.stdout and "colour" in done.stdout


def test_a_timeout_exits_3_and_the_job_goes_on(server: Served, jobs: Path) -> None:
    folder = make_job(jobs / server.outputs["option"], "large-1",
                      {f"doc-{i:04d}.txt": {"Title": str(i)} for i in range(LARGE_JOB_DOCUMENTS)})
    done = kendra_ingest("submit", folder, "--stack-outputs", server.outputs_file, "--wait",
                         "--timeout", str(TIMEOUT_SECONDS))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "large-1 has no summary after 0.3 s" in done.stderr and "kendra-ingest status large-1" in done.stderr
    deadline = time.monotonic() + 120
    while (status := kendra_ingest("status", "large-1", "--stack-outputs", server.outputs_file)).returncode == 3:
        assert time.monotonic() < deadline, status.stderr
        time.sleep(0.5)
    assert status.returncode == 0 and "large-1: SUCCEEDED" in status.stdout


def test_objects_left_under_the_prefix_are_refused_before_uploading(server: Served, jobs: Path) -> None:
    _s3(server).put_object(Bucket=server.outputs["ingestion_bucket"], Key="teams/stale/batches/old.txt", Body=b"x")
    folder = make_job(jobs / server.outputs["option"], "stale-1", {"new.txt": {"Title": "N"}})
    done = kendra_ingest("submit", folder, "--stack-outputs", server.outputs_file, "--prefix", "teams/stale")
    assert done.returncode == 3 and "already holds 1 objects" in done.stderr
    assert _keys(server, "teams/stale/") == ["teams/stale/batches/old.txt"]


def test_no_credentials_is_one_line_and_nothing_is_uploaded(server: Served, jobs: Path) -> None:
    folder = make_job(jobs / server.outputs["option"], "creds-1", {"a.txt": {"Title": "A"}})
    done = subprocess.run([sys.executable, "-m", "kendra_ingest_client", "submit", str(folder), "--stack-outputs",
                           str(server.outputs_file)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=clean_env(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null"))
    assert done.returncode == 3 and done.stderr.startswith("error: no AWS credentials")
    assert len(done.stderr.strip().splitlines()) == 1
    assert _keys(server, "jobs/creds-1/") == []
