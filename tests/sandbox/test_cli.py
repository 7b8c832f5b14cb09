"""``python -m sandbox run``: options reach the deployed program, bad input is one clear line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sandbox import __main__ as cli
from sandbox.run import Sandbox


def _job(root: Path, job_id: str = "cli-1") -> Path:
    folder = root / job_id
    (folder / "batches").mkdir(parents=True)
    (folder / "_control").mkdir()
    (folder / "batches" / "a.txt").write_text("hello")
    (folder / "batches" / "a.txt.metadata.json").write_text(json.dumps({"Title": "A"}))
    (folder / "batches" / "b.txt").write_text("no metadata")
    (folder / "_control" / "manifest.json").write_text(json.dumps({"schemaVersion": 1, "jobId": job_id}))
    return folder


def test_an_unknown_config_key_is_a_usage_error_without_traceback(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--option", "sfn", "--input", str(_job(tmp_path)), "--out", str(tmp_path / "o"),
                  "--config", "mapConcurency=8"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "unknown stack configuration key 'mapConcurency'" in err and "Traceback" not in err


def test_a_bad_config_value_is_one_line_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["run", "--option", "sfn", "--input", str(_job(tmp_path)), "--out", str(tmp_path / "o"),
                     "--config", "mapConcurrency=99", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "mapConcurrency" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_prefix_count_must_match_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["run", "--option", "sfn", "--input", str(_job(tmp_path)), "--out", str(tmp_path / "o"),
                     "--prefix", "a", "--prefix", "b"])
    assert code == 2
    assert "2 --prefix for 1 --input" in capsys.readouterr().err


def test_a_missing_input_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["run", "--option", "sfn", "--input", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "nowhere has no _control/manifest.json" in capsys.readouterr().err


def test_config_prefix_and_indexing_delay_reach_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    submit = Sandbox.submit

    def recording_submit(self: Sandbox, directory: Path, *, prefix: str | None = None) -> str:
        seen["prefix"] = prefix
        seen["config"] = self.deployment.config
        seen["delay"] = self.emulator.indexing_delay_seconds
        seen["capacity"] = self.emulator.index_capacity
        return submit(self, directory, prefix=prefix)

    monkeypatch.setattr(Sandbox, "submit", recording_submit)
    code = cli.main(["run", "--option", "sfn", "--input", str(_job(tmp_path)), "--out", str(tmp_path / "o"),
                     "--prefix", "teams/hr/", "--config", "mapConcurrency=3", "--config", "skipUnchanged=false",
                     "--indexing-delay", "0", "--index-capacity", "1000"])
    assert code == 0
    assert seen["prefix"] == "teams/hr"
    assert seen["config"]["mapConcurrency"] == 3 and seen["config"]["skipUnchanged"] is False
    assert seen["delay"] == 0 and seen["capacity"] == 1000
    err = capsys.readouterr().err
    # one result line per job: status, counts, failures by code
    lines = [line for line in err.splitlines() if "failures by code" in line]
    assert len(lines) == 1
    assert "COMPLETED_WITH_FAILURES" in lines[0] and "MissingMetadata 1" in lines[0]
    assert "2 requested, 1 put" in lines[0]


def test_invocations_json_charges_each_invocation_its_requests(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import time as time_module

    slept: list[float] = []
    real_sleep = time_module.sleep

    def sleep(seconds: float) -> None:
        if seconds == 0.007:  # the injected S3 latency: counted, not waited for
            slept.append(seconds)
            return
        real_sleep(seconds)

    monkeypatch.setattr("sandbox.run.time.sleep", sleep)
    out = tmp_path / "o"
    code = cli.main(["run", "--option", "sfn", "--input", str(_job(tmp_path)), "--out", str(out),
                     "--s3-latency", "7", "--quiet"])
    assert code == 0
    invocations = json.loads((out / "invocations.json").read_text())
    functions = [i["function"] for i in invocations]
    assert functions[0] == "load_manifest" and "process_batch" in functions and "aggregate_failures" in functions
    assert all(i["seconds"] >= 0 for i in invocations)
    (put,) = [i for i in invocations if i["function"] == "process_batch"]
    # one part: its body read once (worker threads are charged too; the metadata travels in the part,
    # read once by the planner), one Kendra call
    assert put["requests"]["s3:GetObject"] == 1
    plan_gets = next(i for i in invocations if i["function"] == "list_batches")["requests"]["s3:GetObject"]
    assert plan_gets == 2  # the manifest and the one metadata file
    assert put["requests"]["kendra:BatchPutDocument"] == 1
    plan = next(i for i in invocations if i["function"] == "list_batches")
    assert plan["requests"]["s3:ListObjectsV2"] >= 1
    s3_requests = sum(n for i in invocations for op, n in i["requests"].items() if op.startswith("s3:"))
    assert len(slept) == s3_requests  # every function S3 request, and only those, waited


def test_an_out_that_is_a_file_is_one_line_before_deploying(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "o").write_text("")
    code = cli.main(["run", "--option", "sfn", "--input", str(_job(tmp_path)), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "is a file; name a folder" in capsys.readouterr().err


def test_an_input_that_is_a_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "job.zip").write_bytes(b"")
    code = cli.main(["run", "--option", "sfn", "--input", str(tmp_path / "job.zip"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "has no _control/manifest.json (not a folder)" in capsys.readouterr().err
