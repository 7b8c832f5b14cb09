"""``python -m sandbox serve`` in a subprocess, for the tests that talk to it over HTTP.

Example::

    with served("sfn", tmp_path) as server:
        boto3.client("s3", endpoint_url=server.endpoint_url, ...)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: Deploying takes a few seconds; a loaded two-core machine can take many times that.
READY_SECONDS = 180.0
STOP_SECONDS = 60.0
#: Any credentials do for the endpoint; none of the machine's own AWS configuration may leak in.
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: no AWS settings of the machine, no bytecode files written."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", **extra}


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    outputs_file: Path
    outputs: dict[str, Any]
    log: Path

    @property
    def endpoint_url(self) -> str:
        return str(self.outputs["endpoint_url"])

    def stop(self) -> int:
        """SIGTERM, as a user's Ctrl-C would end it; returns the exit code (killed after STOP_SECONDS)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def served(option: str, folder: Path, *args: str) -> Iterator[Served]:
    """Start ``sandbox serve --option OPTION --port 0`` writing ``folder/outputs.json``; always stop it."""
    folder.mkdir(parents=True, exist_ok=True)
    outputs, log = folder / "outputs.json", folder / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "serve", "--option", option, "--port", "0", "--outputs", str(outputs),
             *args],
            cwd=ROOT, env=clean_env(), stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT)
        server = Served(process, outputs, {}, log)
        try:
            deadline = time.monotonic() + READY_SECONDS
            while not outputs.exists():
                if process.poll() is not None:
                    raise AssertionError(f"sandbox serve exited {process.returncode}:\n{log.read_text()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"sandbox serve not ready after {READY_SECONDS:.0f}s:\n{log.read_text()}")
                time.sleep(0.1)
            server.outputs = json.loads(outputs.read_text())
            yield server
        finally:
            server.stop()
