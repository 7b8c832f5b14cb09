"""Where a job's documents, metadata and access control file are under ``P``: the manifest's layout keys.

The default layout is ``P/batches/**`` with each ``<doc>.metadata.json`` beside its document. A team
coming from the Kendra S3 connector keeps its bucket as it is instead: documents anywhere under ``P``
(``documentsPrefix: ""``), metadata in a folder of its own (``metadataPrefix``, the connector's
``S3Prefix``), optional metadata, inclusion and exclusion patterns, and the connector's access control
file (``accessControlKey``). docs/migration.md maps every connector setting to these keys.

Pairing stays one streaming merge (see :mod:`kendra_ingest.pairing`): a metadata object
``P/<metadataPrefix><K>.metadata.json`` is fed to it under the key it would have beside its document,
``P/<K>.metadata.json`` (its *side key*). Both listings are in key order, and replacing one common prefix
by another keeps that order, so merging the two listings gives exactly the stream of the side-by-side
layout. Only the document keys waiting for their metadata are held in memory, as before.

Example::

    layout = Layout.of("teams/hr", manifest)
    objects = layout.merge(list_objects(s3, bucket, layout.documents),
                           list_objects(s3, bucket, layout.metadata_listing) if layout.metadata else ())
    for item in pairing.pair_objects(objects, layout.documents, real_key=layout.real_metadata_key):
        ...
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from kendra_ingest import manifest as manifests
from kendra_ingest.globs import compile_glob
from kendra_ingest.metadata import MAX_ACL_ENTRIES, Principal
from kendra_ingest.models import SourceObject
from kendra_ingest.pairing import METADATA_SUFFIX
from kendra_ingest.validation import JsonInputError, describe_errors, json_type, load_json

S3_SCHEME = "s3://"


@dataclass
class Layout:
    """The layout of one job: every key rule of the manifest's layout keys, as pure functions of a key.

    ``documents`` is ``P/<documentsPrefix>``, ``metadata`` is ``P/<metadataPrefix>`` (None: metadata
    beside each document). ``excluded`` counts the document objects the patterns left out.
    """

    root: str
    documents: str
    metadata: str | None = None
    reserved: frozenset[str] = frozenset()
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()
    metadata_required: bool = True
    excluded: int = field(default=0, compare=False)

    @classmethod
    def of(cls, prefix: str, manifest: manifests.Manifest) -> Layout:
        root = manifests.job_root(prefix)
        reserved = {key for key in (manifests.deletes_object_key(prefix, manifest),
                                    manifests.access_control_object_key(prefix, manifest)) if key}
        return cls(
            root=root, documents=root + manifest.documents_prefix,
            metadata=root + manifest.metadata_prefix if manifest.metadata_prefix else None,
            reserved=frozenset(reserved),
            include=tuple(compile_glob(p) for p in manifest.include),
            exclude=tuple(compile_glob(p) for p in manifest.exclude),
            metadata_required=manifest.metadata_required,
        )

    @property
    def metadata_listing(self) -> str | None:
        """What to list for the metadata of this job's documents: ``P/<metadataPrefix><documentsPrefix>``."""
        if self.metadata is None:
            return None
        return self.metadata + self.documents[len(self.root):]

    def side_key(self, metadata_key: str) -> str:
        """``P/<metadataPrefix><K>.metadata.json`` -> ``P/<K>.metadata.json`` (where pairing expects it)."""
        assert self.metadata is not None and metadata_key.startswith(self.metadata), metadata_key
        return self.root + metadata_key[len(self.metadata):]

    def real_metadata_key(self, key: str) -> str:
        """The object key of a metadata file pairing knows by its side key (the same key without a prefix)."""
        if self.metadata is None:
            return key
        return self.metadata + key[len(self.root):]

    def is_reserved(self, key: str) -> bool:
        """Never a document: control files, the deletes and access control files, metadata files."""
        return (
            key.startswith(self.root + manifests.CONTROL_DIR)
            or key in self.reserved
            or (self.metadata is not None and (key.startswith(self.metadata) or key.endswith(METADATA_SUFFIX)))
        )

    def is_excluded(self, document_key: str) -> bool:
        """Left out by the patterns (relative to ``P/<documentsPrefix>``); exclude wins over include."""
        relative = document_key[len(self.documents):]
        if any(p.fullmatch(relative) for p in self.exclude):
            return True
        return bool(self.include) and not any(p.fullmatch(relative) for p in self.include)

    def merge(self, documents: Iterable[SourceObject], metadata: Iterable[SourceObject] = ()) -> Iterator[SourceObject]:
        """One key-ordered stream for pairing: the job's documents and metadata (by side key).

        Reserved objects and folders are dropped; an excluded document is dropped and counted, and so
        is its metadata (not counted: the document is what was excluded).
        """
        def own(objects: Iterable[SourceObject]) -> Iterator[SourceObject]:
            for obj in objects:
                key = obj.key
                if key.endswith("/"):
                    continue
                if self.metadata is None and key.endswith(METADATA_SUFFIX):
                    if not self._drops(key[: -len(METADATA_SUFFIX)]):
                        yield obj
                    continue
                if self.is_reserved(key):
                    continue
                if self.is_excluded(key):
                    self.excluded += 1
                    continue
                yield obj

        def side(objects: Iterable[SourceObject]) -> Iterator[SourceObject]:
            for obj in objects:
                if not obj.key.endswith(METADATA_SUFFIX):
                    continue  # not a metadata file: the connector ignores it too
                key = self.side_key(obj.key)
                if not self._drops(key[: -len(METADATA_SUFFIX)]):
                    yield obj.model_copy(update={"key": key})

        if self.metadata is None:
            return own(documents)
        return heapq.merge(own(documents), side(metadata), key=lambda o: o.key)

    def _drops(self, document_key: str) -> bool:
        # Metadata follows its document: dropped when the document would be reserved or excluded.
        return self.is_reserved(document_key) or self.is_excluded(document_key)


# --- the access control file -----------------------------------------------------------------------


class AccessControlError(ValueError):
    """The access control file is missing or does not parse: the job must not send anything."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Rule(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", strict=True, frozen=True)

    key_prefix: str = Field(min_length=1, max_length=1024)
    acl_entries: list[Principal] = Field(min_length=1, max_length=MAX_ACL_ENTRIES)


@dataclass(frozen=True)
class AccessControl:
    """The connector's access control file: ``(path under P, ACL entries)`` per ``keyPrefix``.

    A document gets the entries of the longest ``keyPrefix`` its key (relative to ``P``) starts with,
    so a rule for one file or folder refines a rule for its parent. The bucket named in ``keyPrefix``
    is ignored: the team copies its connector bucket's tree under ``P`` and keeps the file unchanged.

    Example::

        acl = parse_access_control(b'[{"keyPrefix": "s3://b/hr/", "aclEntries": [...]}]')
        acl.rule_for("hr/handbook.pdf")   # 0: the index of the rule in ``acl.entries``
    """

    paths: tuple[str, ...]
    entries: tuple[list[dict[str, Any]], ...]

    def rule_for(self, relative_key: str) -> int | None:
        best: int | None = None
        for position, path in enumerate(self.paths):
            if relative_key.startswith(path) and (best is None or len(path) > len(self.paths[best])):
                best = position
        return best


def parse_access_control(raw: bytes, *, key: str = "accessControlKey") -> AccessControl:
    """Validate the file's bytes; raise :class:`AccessControlError` naming what is wrong."""
    what = f"access control file {key}"
    try:
        value = load_json(raw, what=what, strip_bom=True, shape="a JSON array of {keyPrefix, aclEntries}")
    except JsonInputError as exc:
        raise AccessControlError(exc.message) from None
    if not isinstance(value, list):
        raise AccessControlError(f"{what} must be a JSON array of {{keyPrefix, aclEntries}} (got {json_type(value)})")
    paths, entries = [], []
    for position, item in enumerate(value):
        if not isinstance(item, dict):
            raise AccessControlError(f"{what} entry {position}: must be an object {{keyPrefix, aclEntries}} "
                                     f"(got {json_type(item)})")
        try:
            rule = _Rule.model_validate(item)
        except ValidationError as exc:
            raise AccessControlError(describe_errors(exc, what=f"{what} entry {position}")) from None
        if not rule.key_prefix.startswith(S3_SCHEME):
            raise AccessControlError(f"{what} entry {position} field 'keyPrefix': must start with s3:// "
                                     f"(got {rule.key_prefix!r})")
        _bucket, _, path = rule.key_prefix[len(S3_SCHEME):].partition("/")
        paths.append(path)
        entries.append([p.model_dump(by_alias=True, exclude_none=True) for p in rule.acl_entries])
    return AccessControl(paths=tuple(paths), entries=tuple(entries))
