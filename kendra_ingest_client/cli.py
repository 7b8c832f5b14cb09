"""``kendra-ingest submit|status|report``: the commands, their exit codes and their error lines.

Exit codes: 0 ``SUCCEEDED``, 1 ``COMPLETED_WITH_FAILURES``, 2 ``FAILED``, 3 a timeout, a usage error or
an AWS error (one line on stderr, no traceback), 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from kendra_ingest_client.job_folder import JOB_ID, JobFolder
from kendra_ingest_client.render import show_failures, show_summary
from kendra_ingest_client.reports import EXIT_ERROR, finished_parts, read_report
from kendra_ingest_client.stack import IngestError, StackOutputs
from kendra_ingest_client.submit import Interrupted, Submitted, check_prefix, submit, wait

EXIT_INTERRUPTED = 130
#: Without a terminal, how often --wait prints a progress line.
PLAIN_PROGRESS_SECONDS = 10.0
#: Where ``submit`` puts a job when no --prefix is given.
DEFAULT_PREFIX_ROOT = "jobs"

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

stack_outputs_option = click.option(
    "--stack-outputs", "stack_outputs", required=True, metavar="FILE", type=click.Path(path_type=Path),
    help="`pulumi stack output --json` of the stack, or the file `python -m sandbox serve` wrote")
endpoint_option = click.option(
    "--endpoint-url", default=None, metavar="URL",
    help="S3 endpoint (default: the outputs file's endpoint_url, else AWS's own)")


def _job_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not JOB_ID.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not a job id (1-80 characters of [A-Za-z0-9._-], "
                                 "starting with a letter or digit)")
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Submit a folder of documents as a Kendra ingestion job, follow it, read its report."""


@cli.command("submit")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@stack_outputs_option
@click.option("--prefix", default=None, metavar="P",
              help=f"the job's prefix in the ingestion bucket (default {DEFAULT_PREFIX_ROOT}/<jobId>)")
@click.option("--job-id", default=None, metavar="J", callback=_job_id, help="set the manifest's jobId")
@endpoint_option
@click.option("--wait", "wait_", is_flag=True, help="wait for the job's summary, then print it")
@click.option("--timeout", default=3600.0, type=click.FloatRange(min=0), metavar="S", show_default=True,
              help="seconds --wait waits for the summary")
def submit_command(directory: Path, stack_outputs: Path, prefix: str | None, job_id: str | None,
                   endpoint_url: str | None, wait_: bool, timeout: float) -> int:
    """Upload DIR (batches/**, optional deletes file, _control/manifest.json) as one job, the manifest last.

    The manifest gets expectedDocuments = the documents uploaded, so a job never runs on a partial upload.
    """
    stack = StackOutputs.load(stack_outputs)
    folder = JobFolder.scan(directory, job_id=job_id)
    prefix = (prefix if prefix is not None else f"{DEFAULT_PREFIX_ROOT}/{folder.job_id}").strip("/")
    s3 = stack.s3_client(endpoint_url=endpoint_url)
    if not check_prefix(s3, stack, folder, prefix):
        err.print(f"warning: may not list s3://{stack.ingestion_bucket}/{prefix}: not checked for objects an "
                  "earlier upload left there (the job would take them too)", markup=False)
    where = f"s3://{stack.ingestion_bucket}/{prefix + '/' if prefix else ''}"
    err.print(f"Submitting job {folder.job_id}: {folder.documents} documents in {len(folder.uploads)} files "
              f"to {where}" + (f" ({folder.hidden} hidden files skipped)" if folder.hidden else ""), markup=False)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("uploading", total=len(folder.uploads))
        job = submit(s3, stack, folder, prefix=prefix, on_upload=lambda upload: progress.advance(task))
    err.print(f"Uploaded {job.files} files, then the manifest {job.manifest_key} "
              f"(expectedDocuments {job.documents}): the job starts now.", markup=False)
    if not wait_:
        err.print(f"Follow it with: kendra-ingest status {job.job_id} --stack-outputs {stack_outputs}",
                  markup=False)
        return 0
    return _wait_and_show(s3, stack, job, timeout=timeout, stack_outputs=stack_outputs)


def _wait_and_show(s3: Any, stack: StackOutputs, job: Submitted, *, timeout: float, stack_outputs: Path) -> int:
    follow = f"kendra-ingest status {job.job_id} --stack-outputs {stack_outputs}"
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                      transient=True, disable=not err.is_terminal) as progress:
            task = progress.add_task(f"job {job.job_id}: waiting for the pipeline", total=None)

            last_line = [0.0]

            def tick(parts: int | None, elapsed: float) -> None:
                running = f"job {job.job_id}: running" + (f", {parts} parts finished" if parts is not None else "")
                progress.update(task, description=running)
                # Not a terminal (a CI log): a plain line now and then instead of the spinner.
                if not err.is_terminal and elapsed - last_line[0] >= PLAIN_PROGRESS_SECONDS:
                    last_line[0] = elapsed
                    err.print(f"... {running} ({elapsed:.0f} s)", markup=False)

            report = wait(s3, stack, job, timeout=timeout, on_tick=tick)
    except KeyboardInterrupt:
        err.print(f"Interrupted while waiting; job {job.job_id} goes on. Follow it with: {follow}", markup=False)
        return EXIT_INTERRUPTED
    if report is None:
        err.print(f"error: job {job.job_id} has no summary after {timeout:g} s; it may still be running "
                  f"(follow it with: {follow})", markup=False)
        return EXIT_ERROR
    show_summary(out, report, reports_bucket=stack.reports_bucket)
    return report.exit_code


@cli.command("status")
@click.argument("job_id", metavar="J", callback=_job_id)
@stack_outputs_option
@endpoint_option
def status_command(job_id: str, stack_outputs: Path, endpoint_url: str | None) -> int:
    """The status and counts of job J; the exit code follows its status (3 while it has no summary)."""
    stack = StackOutputs.load(stack_outputs)
    s3 = stack.s3_client(endpoint_url=endpoint_url)
    report = read_report(s3, stack.reports_bucket, job_id)
    if report is None:
        parts = finished_parts(s3, stack.reports_bucket, job_id, None)
        state = f"running ({parts} parts finished)" if parts else "not started, still planning, or unknown"
        err.print(f"{job_id}: no summary yet: {state}", markup=False)
        return EXIT_ERROR
    show_summary(out, report, reports_bucket=stack.reports_bucket)
    return report.exit_code


@cli.command("report")
@click.argument("job_id", metavar="J", callback=_job_id)
@stack_outputs_option
@endpoint_option
@click.option("--csv", "as_csv", is_flag=True, help="print failures.csv as it is (for a file or a spreadsheet)")
def report_command(job_id: str, stack_outputs: Path, endpoint_url: str | None, as_csv: bool) -> int:
    """The report of finished job J: its summary and its failures (0 when printed, 3 when it has none)."""
    stack = StackOutputs.load(stack_outputs)
    s3 = stack.s3_client(endpoint_url=endpoint_url)
    report = read_report(s3, stack.reports_bucket, job_id)
    if report is None:
        raise IngestError(f"job {job_id} has no report in s3://{stack.reports_bucket}/_reports/{job_id}/ "
                          "(not finished yet, or unknown)")
    if as_csv:
        sys.stdout.buffer.write(report.failures_csv)
        sys.stdout.flush()
        return 0
    show_summary(out, report, reports_bucket=stack.reports_bucket)
    show_failures(out, report)
    return 0


def _aws_error_line(exc: Exception) -> str | None:
    """One line for what botocore raised, or None when it is not botocore's."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')} (is the stack or sandbox serve up?)"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message') or ''}".rstrip(": ")
    if isinstance(exc, BotoCoreError):
        return f"AWS: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    """The console script: run one command and return its exit code; never a traceback for a user error."""
    try:
        code = cli.main(args=argv, prog_name="kendra-ingest", standalone_mode=False)
    except click.UsageError as exc:
        command = f" {exc.ctx.command_path.split(' ', 1)[1]}" if exc.ctx and " " in exc.ctx.command_path else ""
        err.print(f"error: {exc.format_message()} (see kendra-ingest{command} --help)", markup=False)
        return EXIT_ERROR
    except (click.Abort, Interrupted) as exc:
        err.print(f"error: {exc}" if isinstance(exc, Interrupted) else "error: interrupted", markup=False)
        return EXIT_INTERRUPTED
    except IngestError as exc:
        err.print(f"error: {exc}", markup=False)
        return EXIT_ERROR
    except Exception as exc:
        line = _aws_error_line(exc)
        if line is None:
            raise
        err.print(f"error: {line}", markup=False)
        return EXIT_ERROR
    return code if isinstance(code, int) else 0
