"""The hostile-input corpus (tests/data/hostile/cases.py) against the pure functions.

Every case whose outcome a pure function decides is checked here, fast; tests/sandbox/test_hostile.py runs
the whole corpus end to end through both options.
"""

from __future__ import annotations

import pytest
from kendra_ingest import manifest as manifests
from kendra_ingest import metadata, pairing
from kendra_ingest.models import Failure, SourceObject

from tests.data.hostile.cases import (
    BATCHES,
    DATE_FIELDS,
    DOCUMENT_CASES,
    JOB_CASES,
    MANIFEST,
    DocumentCase,
    JobCase,
    document_outcomes,
)

P = "P/"
PREFIX = P + BATCHES


def _ids(cases):
    return [case.name for case in cases]


def test_the_corpus_has_at_least_50_cases_with_unique_names():
    names = _ids(DOCUMENT_CASES) + _ids(JOB_CASES)
    assert len(names) >= 50 and len(set(names)) == len(names)
    ids = [o.document_id for o in document_outcomes() if o.code is None]
    assert len(ids) == len(set(ids)), "two documents that should be put share a DocumentId"
    assert all(o.message for o in document_outcomes() if o.code is not None)
    assert all(case.error or case.status != "FAILED" for case in JOB_CASES)


def _build(case: DocumentCase) -> list[Failure | dict]:
    """What metadata.parse_metadata + to_document make of the case's documents (after pairing)."""
    objects = [SourceObject(key=P + key, size=len(body), etag="e") for key, body in sorted(case.files.items())]
    results: list[Failure | dict] = []
    for item in pairing.pair_objects(objects, PREFIX):
        if isinstance(item, Failure):
            if isinstance(item, pairing.LoneMetadata):
                declared = metadata.declared_document_id(case.files[item.metadata_key.removeprefix(P)])
                item = item.model_copy(update={"document_id": declared or item.document_id})
            results.append(item)
            continue
        key = item.document.key
        hint = pairing.default_document_id(key, PREFIX)
        meta = metadata.parse_metadata(case.files[item.metadata.key.removeprefix(P)], document_id_hint=hint)
        if isinstance(meta, Failure):
            results.append(meta)
            continue
        document_id = metadata.resolve_document_id(meta, key, PREFIX)
        results.append(metadata.to_document(meta, document_id=document_id, key=key,
                                            body=case.files[key.removeprefix(P)], date_fields=DATE_FIELDS))
    return results


UNIT_CASES = [case for case in DOCUMENT_CASES if all(o.stage in ("metadata", "pairing") for o in case.outcomes)]


@pytest.mark.parametrize("case", UNIT_CASES, ids=_ids(UNIT_CASES))
def test_document_case(case: DocumentCase):
    results = _build(case)
    assert len(results) == len(case.outcomes)

    def order(item: Failure | dict) -> tuple[str, str]:
        return (item.document_id, item.error_code) if isinstance(item, Failure) else (item["Id"], "")

    outcomes = sorted(case.outcomes, key=lambda o: (o.document_id, o.code or ""))
    for outcome, result in zip(outcomes, sorted(results, key=order), strict=True):
        if outcome.code is None:
            assert isinstance(result, dict), result
            assert result["Id"] == outcome.document_id
            continue
        assert isinstance(result, Failure), result
        assert (result.document_id, result.error_code) == (outcome.document_id, outcome.code)
        assert outcome.message in result.error_message, result.error_message
        assert "\n" not in result.error_message and "Traceback" not in result.error_message


MANIFEST_CASES = [case for case in JOB_CASES if case.stage == "manifest"]


@pytest.mark.parametrize("case", MANIFEST_CASES, ids=_ids(MANIFEST_CASES))
def test_manifest_case(case: JobCase):
    raw = case.files[MANIFEST]
    if case.error is None:
        assert manifests.parse_manifest(raw).job_id == case.name
        return
    with pytest.raises(manifests.ManifestError) as caught:
        manifests.parse_manifest(raw)
    assert case.error in caught.value.message
    assert "\n" not in caught.value.message
    # The report lands under the manifest's own jobId when it is readable and valid, else a derived one.
    job_id = manifests.derive_job_id(f"P/{MANIFEST}", raw)
    assert manifests.is_valid_job_id(job_id)
    assert (job_id == case.name) == (case.job_id is not None), job_id


DELETES_CASES = [case for case in JOB_CASES if case.stage == "deletes" or "deletes.txt" in case.files]


@pytest.mark.parametrize("case", DELETES_CASES, ids=_ids(DELETES_CASES))
def test_deletes_file_case(case: JobCase):
    manifest = manifests.parse_manifest(case.files[MANIFEST])
    if case.error is None:
        ids = manifest.requested_deletes(manifests.read_deletes(case.files["deletes.txt"]))
        assert len(ids) == case.deletes["requested"]
        assert all(i == i.strip() and i for i in ids)
        return
    with pytest.raises(manifests.ManifestError) as caught:
        manifests.read_deletes(case.files["deletes.txt"])
    assert case.error in caught.value.message
