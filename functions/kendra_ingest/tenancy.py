"""Sources and tenancy (the stack's ``sources``): which prefix each source owns, and which documents.

With sources registered, a job runs only when its manifest sits under the prefix registered for the
source it names, and it may put or delete only documents that are new or already owned by that source
(the documents table records the owner of every document it put). Everything else fails before any
request reaches Kendra: the job as a whole (:func:`check_job`) or the document (:func:`screen`, with
``ForeignDocument``). Planning checks every document; each part checks its own again right before it is
sent, so a document another source's job claimed meanwhile is not overwritten or deleted either (what
remains is the moment between that check and the owner's record, for a brand-new id two sources send at
once). Without sources, any prefix may hold a job and ownership is only recorded.

Example::

    job = check_job(job, {"hr": "teams/hr"})      # job.error set when the manifest is elsewhere
    docs, deletes, put_failures, delete_failures = screen(docs, deletes, owners, source="hr")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kendra_ingest.job import Job
from kendra_ingest.models import ErrorCode, Failure, PartDoc

Owners = Callable[[list[str]], Mapping[str, str | None]]
"""``owners(ids) -> {id: source or None}`` for the ids the documents table knows (new ids are absent)."""


def registered(sources: Mapping[str, str]) -> str:
    """``hr → teams/hr/, fin → teams/fin/``: the registrations, as a message lists them."""
    return ", ".join(f"{source} → {prefix.strip('/')}/" for source, prefix in sorted(sources.items()))


def under(prefix: str, job_prefix: str) -> bool:
    """True when the job prefix ``P`` is the registered ``prefix`` or lies under it (by path segment)."""
    owned = prefix.strip("/")
    return job_prefix == owned or job_prefix.startswith(owned + "/")


def job_error(job: Job, sources: Mapping[str, str] | None) -> str | None:
    """Why ``job`` may not run under ``sources``; None when it may (or no sources are registered)."""
    if not sources:
        return None
    manifest = job.manifest_key
    if job.source not in sources:
        return (f"source {job.source!r} of manifest {manifest} is not registered; registered sources "
                f"(source → prefix): {registered(sources)}; nothing was sent to Kendra")
    if not under(sources[job.source], job.prefix):
        return (f"manifest {manifest} is not under {sources[job.source].strip('/')}/, the prefix registered "
                f"for source {job.source!r}; registered sources (source → prefix): {registered(sources)}; "
                "nothing was sent to Kendra")
    return None


def check_job(job: Job, sources: Mapping[str, str] | None) -> Job:
    """``job``, FAILED (``error`` set) when its manifest breaks the registration; an earlier error wins."""
    if job.error:
        return job
    error = job_error(job, sources)
    return job if error is None else job.model_copy(update={"error": error})


def foreign_message(document_id: str, owner: str, source: str, operation: str) -> str:
    return (f"document {document_id!r} belongs to source {owner!r}, not {source!r}: the {operation} was not "
            f"sent (to move it, {owner!r} deletes it, then {source!r} puts it)")


def foreign_owners(ids: Iterable[str], owners: Owners, *, source: str) -> dict[str, str]:
    """``{id: owner}`` for the ids another source owns (one lookup; unowned and own ids are absent)."""
    unique = list(dict.fromkeys(ids))
    known = owners(unique) if unique else {}
    return {i: owner for i in unique if (owner := known.get(i)) and owner != source}


def foreign_failure(document_id: str, owner: str, source: str, operation: str) -> Failure:
    return Failure(document_id=document_id, error_code=ErrorCode.FOREIGN_DOCUMENT,
                   error_message=foreign_message(document_id, owner, source, operation))


def screen(
    docs: list[PartDoc], deletes: list[str], owners: Owners, *, source: str
) -> tuple[list[PartDoc], list[str], list[Failure], list[Failure]]:
    """Split off the puts and deletes of documents another source owns.

    Returns the documents and deletes that may go ahead and a ``ForeignDocument`` failure for each other
    one (puts, then deletes). A document the table records without an owner counts as new.
    """
    other = foreign_owners([*(d.document_id for d in docs), *deletes], owners, source=source)
    put_failures = [foreign_failure(d.document_id, other[d.document_id], source, "put")
                    for d in docs if d.document_id in other]
    delete_failures = [foreign_failure(i, other[i], source, "delete") for i in deletes if i in other]
    foreign = {f.document_id for f in (*put_failures, *delete_failures)}
    return ([d for d in docs if d.document_id not in foreign], [i for i in deletes if i not in foreign],
            put_failures, delete_failures)


def owned(entries: Mapping[str, object], ids: Iterable[str]) -> dict[str, str | None]:
    """``{id: source}`` from ledger entries (anything with a ``source`` attribute) for ``ids``."""
    return {i: getattr(entries[i], "source", None) for i in ids if i in entries}


def ledger_owners(ledger: Any) -> Owners:
    """The owners lookup of a :class:`kendra_ingest.ledger.Ledger` (one BatchGetItem per 100 ids)."""
    return lambda ids: owned(ledger.entries(ids), ids)
