"""How a report reads on a terminal (rich tables; plain text when the output is not a terminal).

Example::

    show_summary(Console(), report, reports_bucket="reports-bucket")
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kendra_ingest_client.reports import Report

STATUS_STYLE = {"SUCCEEDED": "bold green", "COMPLETED_WITH_FAILURES": "bold yellow", "FAILED": "bold red"}
#: Failure rows ``report`` shows before pointing at ``--csv`` for the rest.
SHOWN_ROWS = 50


def status_line(report: Report) -> Text:
    """``J: STATUS (option sqs, source hr, 1.2 s)``."""
    s = report.summary
    status = str(s.get("status"))
    line = Text(f"{s.get('jobId')}: ")
    line.append(status, style=STATUS_STYLE.get(status, "bold"))
    details = [f"option {s.get('option')}", f"source {s.get('source')}"]
    if isinstance(s.get("durationSeconds"), int | float):
        details.append(f"{s['durationSeconds']:.1f} s")
    line.append(f" ({', '.join(details)})")
    return line


def _n(counts: Any, key: str) -> str:
    value = counts.get(key) if isinstance(counts, dict) else None
    return "-" if value is None else str(value)


def show_summary(console: Console, report: Report, *, reports_bucket: str) -> None:
    """The status, the counts, the Kendra calls, the failures by code and where failures.csv is."""
    s = report.summary
    console.print(status_line(report))
    if s.get("error"):
        console.print(Text(f"error: {s['error']}", style="red"))
    counts = Table(show_edge=False, pad_edge=False)
    for column in ("", "requested", "put / deleted", "unchanged", "excluded", "failed"):
        counts.add_column(column, justify="left" if not column else "right")
    d, x = s.get("documents", {}), s.get("deletes", {})
    counts.add_row("documents", _n(d, "requested"), _n(d, "put"), _n(d, "skippedUnchanged"), _n(d, "excluded"),
                   _n(d, "failed"))
    counts.add_row("deletes", _n(x, "requested"), _n(x, "deleted"), "-", "-", _n(x, "failed"))
    console.print(counts)
    k = s.get("kendra", {})
    console.print(f"Kendra: {_n(k, 'batchPutCalls')} put calls, {_n(k, 'batchDeleteCalls')} delete calls, "
                  f"{_n(k, 'statusCalls')} status calls, {_n(k, 'throttled')} throttled")
    by_code = report.failures_by_code()
    if by_code:
        table = Table(title="Failures by code", title_justify="left", show_edge=False, pad_edge=False)
        table.add_column("errorCode")
        table.add_column("documents", justify="right")
        table.add_column("for example")
        for code, n, example in by_code:
            # Text, not str: ids and messages are data, never rich markup.
            table.add_row(Text(code), str(n), Text(example))
        console.print(table)
    else:
        console.print("No failures.")
    console.print(Text(f"failures.csv: s3://{reports_bucket}/{s.get('failuresKey')}"))


def show_failures(console: Console, report: Report, *, limit: int = SHOWN_ROWS) -> None:
    """The failure rows themselves (the first ``limit``; ``report --csv`` prints them all)."""
    rows = report.rows
    if not rows:
        return
    table = Table(title=f"Failures ({len(rows)})", title_justify="left", show_edge=False, pad_edge=False)
    for column in ("documentId", "errorCode", "errorMessage"):
        table.add_column(column, overflow="fold")
    for row in rows[:limit]:
        table.add_row(Text(row.get("documentId") or ""), Text(row.get("errorCode") or ""),
                      Text(row.get("errorMessage") or ""))
    console.print(table)
    if len(rows) > limit:
        console.print(f"... and {len(rows) - limit} more (--csv prints them all)")
