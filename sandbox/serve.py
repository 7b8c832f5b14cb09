"""``python -m sandbox serve``: the deployed sandbox as a local AWS endpoint (moto's server mode).

The program is deployed exactly as ``run`` deploys it (:class:`sandbox.run.Sandbox`: moto in-process,
the Kendra emulator, in-process Lambdas, the EventBridge and SQS wiring). moto's server answers HTTP
from the same module-level backends that the in-process ``mock_aws`` state lives in, so an object that
any S3 client uploads through the endpoint is the object the deployed notifications see: a manifest
uploaded there starts its job as in ``run``.

Example (another terminal then uploads through ``endpoint_url``)::

    serve(SandboxOptions(option="sqs"), Path("o.json"), port=0)   # until SIGINT / SIGTERM
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox.run import Sandbox, SandboxError, SandboxOptions, result_line

HOST = "127.0.0.1"
#: moto's own server default, so tools that already know moto find it there.
DEFAULT_PORT = 5000
#: How often the server looks for newly written job summaries (one result line per job).
POLL_SECONDS = 0.5
#: On shutdown, how long running jobs may take to finish before the embedded AWS goes away.
SETTLE_SECONDS = 30.0


def _check_port_free(port: int) -> None:
    """Fail now with a clear line: moto's ThreadedMotoServer waits forever when its bind fails."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # The server binds with SO_REUSEADDR too (werkzeug): a port in TIME_WAIT is fine for both.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise SandboxError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from exc


def _write_atomically(path: Path, text: str) -> None:
    """Readers poll for the outputs file: they must never see it half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM end the serve loop (cleanly, so index.json and calls.json get written)."""
    def handler(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class _JobWatcher:
    """Prints one result line for every job summary written (or rewritten) while serving."""

    def __init__(self, box: Sandbox, echo: Callable[[str], None]) -> None:
        self._box = box
        self._echo = echo
        self._seen: dict[str, str] = {}
        self._errors = 0

    def poll(self) -> None:
        s3, bucket = self._box.s3, self._box.outputs["reports_bucket"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="_reports/"):
            for obj in page.get("Contents", []):
                key: str = obj["Key"]
                if not key.endswith("/summary.json") or self._seen.get(key) == obj["ETag"]:
                    continue
                self._seen[key] = obj["ETag"]
                job_id = key.removeprefix("_reports/").removesuffix("/summary.json")
                try:
                    summary, failures = self._box.report(job_id)
                except Exception as exc:  # a summary being replaced: read it on the next poll
                    self._seen.pop(key, None)
                    logging.getLogger(__name__).debug("summary of %s not readable yet: %s", job_id, exc)
                    continue
                self._echo(f"==> {result_line(job_id, summary, failures)}")
        errors = self._box.delivery_errors()
        for error in errors[self._errors:]:
            self._echo(f"==> event delivery failed: {error}")
        self._errors = len(errors)


def _settle(box: Sandbox, echo: Callable[[str], None]) -> None:
    """Let running jobs finish (bounded) before the mock closes: moto's Step Functions threads that outlive
    it would send their calls to real AWS endpoints."""
    deadline = time.monotonic() + SETTLE_SECONDS
    if not box.idle():
        echo(f"==> waiting up to {SETTLE_SECONDS:.0f}s for running jobs to finish")
    while not box.idle():
        if time.monotonic() > deadline:
            echo("==> jobs still running are cut short")
            return
        time.sleep(0.1)


def serve(options: SandboxOptions, outputs_file: Path, *, port: int = DEFAULT_PORT) -> int:
    """Deploy, serve on ``HOST:port`` (0 picks a free port) until SIGINT/SIGTERM, then write the index.

    ``outputs_file`` gets the stack outputs (as ``pulumi stack output --json`` prints them) plus
    ``endpoint_url`` once the endpoint answers; ``index.json`` and ``calls.json`` (as ``run`` writes them)
    go beside it on shutdown.
    """
    from moto.server import ThreadedMotoServer

    def echo(line: str) -> None:
        if not options.quiet:
            print(line, file=sys.stderr, flush=True)

    _check_port_free(port)
    # A file left by an earlier serve names an endpoint that is gone: whoever waits for it must wait for ours.
    outputs_file.unlink(missing_ok=True)
    stop = threading.Event()
    with _stop_on_signals(stop), Sandbox(options) as box:
        # One access line per request would bury the result lines.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
        server.start()
        try:
            host, bound = server.get_host_and_port()
            endpoint = f"http://{host}:{bound}"
            _write_atomically(outputs_file, json.dumps({**box.outputs, "endpoint_url": endpoint}, indent=2) + "\n")
            echo(f"==> option {options.option} serving at {endpoint}; stack outputs in {outputs_file}; "
                 "Ctrl-C (or SIGTERM) stops and writes index.json and calls.json beside it")
            watcher = _JobWatcher(box, echo)
            while not stop.wait(POLL_SECONDS):
                watcher.poll()
            watcher.poll()
        finally:
            server.stop()
        _settle(box, echo)
        out = outputs_file.parent
        box.write_index(out)
    echo(f"==> stopped; index.json and calls.json in {out}")
    return 0
