"""Regenerates sample/job (run from the repo root: python sample/make_sample.py).

A phonebook-and-policies job of 30 good documents plus one document for each failure kind.
The files are committed; this script documents how they were made.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

JOB = Path(__file__).resolve().parent / "job"
DEPARTMENTS = ["Engineering", "Finance", "Legal", "People", "Sales"]
NAMES = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov", "Donald Knuth",
         "Frances Allen", "John Backus", "Margaret Hamilton", "Ken Thompson", "Radia Perlman", "Tim Berners-Lee",
         "Katherine Johnson", "Leslie Lamport", "Shafi Goldwasser", "Niklaus Wirth", "Adele Goldberg",
         "Dennis Ritchie", "Hedy Lamarr", "Vint Cerf"]


def write(rel: str, body: bytes | str, meta: dict | bytes | None) -> None:
    path = JOB / "batches" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body.encode() if isinstance(body, str) else body)
    if meta is not None:
        raw = meta if isinstance(meta, bytes) else json.dumps(meta, indent=2, ensure_ascii=False).encode()
        (path.parent / (path.name + ".metadata.json")).write_bytes(raw)


def person(n: int, name: str) -> None:
    dept = DEPARTMENTS[n % len(DEPARTMENTS)]
    body = f"{name}\nDepartment: {dept}\nExtension: {4000 + n}\nOffice: Building {n % 4 + 1}, floor {n % 7 + 1}\n"
    write(f"people/emp-{100 + n}.txt", body, {
        "DocumentId": f"emp-{100 + n}",
        "Title": f"{name} ({dept})",
        "Attributes": {
            "_source_uri": f"https://phonebook.example.com/people/emp-{100 + n}",
            "_created_at": f"2024-0{n % 9 + 1}-1{n % 9}T09:00:00Z",
            "_last_updated_at": "2025-10-05T12:00:00+02:00",
            "_category": "phonebook",
            "department": dept,
            "level": n % 5 + 1,
            "tags": ["employee", dept.lower()],
            "reviewed_at": "2025-09-30T00:00:00Z",
        },
        "AccessControlList": [
            {"Name": "all-staff", "Type": "GROUP", "Access": "ALLOW"},
            {"Name": "contractors", "Type": "GROUP", "Access": "DENY"},
        ],
    })


def policies() -> None:
    docs = {
        "policies/travel.html": ("<html><body><h1>Travel policy</h1><p>Book economy for flights under 6 hours.</p>"
                                 "</body></html>", "Travel policy"),
        "policies/expenses.md": ("# Expenses\n\nSubmit receipts within 30 days.\n", "Expense policy"),
        "policies/security.md": ("# Security\n\nUse a hardware key. Report phishing to security@.\n",
                                 "Security policy"),
        "policies/leave.html": ("<html><body><h1>Leave</h1><p>25 days per year.</p></body></html>", "Leave policy"),
        "policies/remote.json": (json.dumps({"policy": "remote work", "daysPerWeek": 3}), "Remote work policy"),
    }
    for n, (rel, (body, title)) in enumerate(docs.items()):
        meta: dict = {
            "Title": title,
            "Attributes": {"_source_uri": f"https://intranet.example.com/{rel}", "_category": "policy",
                           "department": "People", "_authors": ["Policy Office"]},
        }
        if n == 0:
            meta["HierarchicalAccessControlList"] = [
                {"PrincipalList": [{"Name": "all-staff", "Type": "GROUP", "Access": "ALLOW"}]},
                {"PrincipalList": [{"Name": "managers", "Type": "GROUP", "Access": "ALLOW"}]},
            ]
        if n == 1:
            meta["ContentType"] = "MD"
        write(rel, body, meta)
    write("policies/holidays.txt", "Public holidays: see the regional calendar.\n",
          {"Title": "Holidays", "Attributes": {"department": "People"}})
    write("policies/parking.txt", "Parking permits are issued by Facilities.\n",
          {"Title": "Parking", "Attributes": {"department": "Facilities", "level": 1}})
    write("policies/badges.txt", "Badges must be visible at all times.\n",
          {"DocumentId": "policy-badges", "Title": "Badges", "Attributes": {"department": "Security"}})
    write("policies/retired-policy.txt", "This policy is superseded by the travel policy.\n",
          {"DocumentId": "emp-888", "Title": "Superseded policy"})
    write("policies/wifi.txt", "Guest Wi-Fi: ask reception.\n",
          {"Title": "Wi-Fi", "Attributes": {"_language_code": "en"}})


def failures() -> None:
    # One document for each failure kind the pipeline or Kendra reports.
    write("bad/no-metadata.txt", "This document has no metadata file.\n", None)  # MissingMetadata
    (JOB / "batches/bad/orphan.pdf.metadata.json").write_text(json.dumps({"Title": "Orphan"}))  # MissingDocument
    write("bad/naive-date.txt", "Date without timezone.\n",
          {"Title": "Naive date", "Attributes": {"_created_at": "2025-01-01T10:00:00"}})  # InvalidMetadata
    write("bad/bad-key.txt", "Attribute key with illegal characters.\n",
          {"Title": "Bad key", "Attributes": {"cost centre!": "42"}})  # InvalidMetadata
    write("bad/not-json.txt", "Metadata is not JSON.\n", b"{Title: 'not json'")  # InvalidMetadata
    write("bad/bom.txt", "Metadata starts with a BOM.\n", b"\xef\xbb\xbf" + json.dumps({"Title": "BOM"}).encode())
    write("bad/long-id.txt", "DocumentId of 2049 characters.\n", {"DocumentId": "x" * 2049, "Title": "Long id"})
    write("bad/empty.txt", b"", {"Title": "Empty"})  # InvalidRequest: 0-byte document
    # DuplicateDocumentId: sorts after people/emp-101.txt, so the original wins (first by S3 key).
    write("people/zz-duplicate.txt", "Claims the id of emp-101.\n", {"DocumentId": "emp-101", "Title": "Duplicate"})
    write("bad/undeclared.txt", "Uses an attribute the index does not declare.\n",
          {"Title": "Undeclared", "Attributes": {"colour": "blue"}})  # InvalidRequest from Kendra
    write("bad/latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"), {"Title": "Not UTF-8"})  # IndexingFailed
    write("bad/huge.txt", ("0123456789abcdef" * 4500) + "\n", {"Title": "Too large"})  # DocumentTooLarge (72 KB)
    write("bad/conflict.txt", "Put and deleted in the same job.\n",
          {"DocumentId": "emp-777", "Title": "Conflict"})  # ConflictingOperation


def main() -> None:
    shutil.rmtree(JOB, ignore_errors=True)
    for n, name in enumerate(NAMES):
        person(n, name)
    policies()
    failures()
    (JOB / "deletes.txt").write_text("emp-999\nemp-777\nemp-never-indexed\n")
    manifest = {"schemaVersion": 1, "jobId": "phonebook-2025-10-05T12-00Z", "source": "phonebook",
                "deletes": ["emp-998"], "deletesKey": "deletes.txt"}
    (JOB / "_control").mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest, indent=2) + "\n"
    (JOB / "_control/manifest.json").write_text(text)
    (JOB.parent / "manifest.json").write_text(text)
    (JOB.parent / "index-fields.json").write_text(json.dumps(
        {"department": "STRING_VALUE", "level": "LONG_VALUE", "tags": "STRING_LIST_VALUE",
         "reviewed_at": "DATE_VALUE"}, indent=2) + "\n")


if __name__ == "__main__":
    main()
