"""Benchmarks for the pure parts of kendra-ingestion (targets in benchmarks/README.md).

Run from the repository root:

    PYTHONPATH=.:functions .venv/bin/python benchmarks/bench_pure.py

Prints a markdown table and writes benchmarks/results.json. Measures:

1. pairing + packing 1,000,000 keys (500k documents + their .metadata.json): wall seconds and
   peak memory (ru_maxrss: peak RSS of this process, and its growth over the baseline taken just
   before the run; this measurement runs first so the peak is its own);
2. packing efficiency (requests / min_requests) on 20,000 log-normal document sizes, with a
   request byte limit that binds (8 MiB) and with the default limits (50 MiB);
3. handler import time: median over 7 fresh processes per handler module in functions/*.py;
4. code archive size: infra.packaging.build_code_archive() into a temporary build dir.
"""

from __future__ import annotations

import json
import math
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kendra_ingest.models import Pair, SourceObject
from kendra_ingest.packing import TooLarge, min_requests, pack
from kendra_ingest.pairing import pair_objects

REPO = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
PREFIX = "P/batches/"


def maxrss_mb() -> float:
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


# --- 1. pairing + packing 1,000,000 keys -----------------------------------------------------------

def listing(documents: int):
    """Sorted listing: doc-000000.pdf, doc-000000.pdf.metadata.json, doc-000001.pdf, ..."""
    rng = random.Random(1)
    for i in range(documents):
        key = f"{PREFIX}doc-{i:07d}.pdf"
        yield SourceObject(key=key, etag=f"{i:032x}", size=rng.randint(1, 5 * MiB))
        yield SourceObject(key=key + ".metadata.json", etag=f"m{i:031x}", size=512)


def bench_pair_pack(documents: int = 500_000) -> dict:
    baseline = maxrss_mb()
    start = time.perf_counter()
    requests = docs = too_large = failures = 0

    def counted(items):
        nonlocal failures
        for item in items:
            if isinstance(item, Pair):
                yield item
            else:
                failures += 1

    for request in pack(counted(pair_objects(listing(documents), PREFIX)), size=lambda p: p.document.size,
                        max_docs=10, max_document_bytes=5 * MiB, max_request_bytes=50 * MiB):
        if isinstance(request, TooLarge):
            too_large += 1
        else:
            requests += 1
            docs += len(request)
    seconds = time.perf_counter() - start
    peak = maxrss_mb()
    assert docs == documents and failures == 0 and too_large == 0, (docs, failures, too_large)
    return {
        "keys": 2 * documents,
        "documents": documents,
        "requests": requests,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak, 1),
        "rss_growth_mb": round(peak - baseline, 1),
        "memory_method": "resource.getrusage(RUSAGE_SELF).ru_maxrss: peak RSS, and growth over the pre-run baseline",
    }


# --- 2. packing efficiency -------------------------------------------------------------------------

def lognormal_sizes(n: int = 20_000, seed: int = 42, median: int = 800_000, sigma: float = 1.0,
                    cap: int = 5 * MiB) -> list[int]:
    """Seeded log-normal sizes, redrawn when over ``cap`` so every document is packable."""
    rng = random.Random(seed)
    sizes = []
    while len(sizes) < n:
        s = int(rng.lognormvariate(math.log(median), sigma))
        if 1 <= s <= cap:
            sizes.append(s)
    return sizes


def bench_efficiency(sizes: list[int], max_request_bytes: int, max_document_bytes: int = 5 * MiB) -> dict:
    requests = 0
    for request in pack(sizes, size=lambda s: s, max_docs=10, max_document_bytes=max_document_bytes,
                        max_request_bytes=max_request_bytes):
        assert not isinstance(request, TooLarge)
        assert len(request) <= 10 and sum(request) <= max_request_bytes
        requests += 1
    lower = min_requests(sizes, max_docs=10, max_request_bytes=max_request_bytes)
    by_count = math.ceil(len(sizes) / 10)
    return {
        "documents": len(sizes),
        "max_request_bytes": max_request_bytes,
        "max_document_bytes": max_document_bytes,
        "requests": requests,
        "min_requests": lower,
        "binding_bound": "bytes" if lower > by_count else "count",
        "ratio": round(requests / lower, 4),
    }


# --- 3. handler import time ------------------------------------------------------------------------

def bench_imports(runs: int = 7) -> dict:
    handlers = sorted(p.stem for p in (REPO / "functions").glob("*.py"))
    python = str(REPO / ".venv" / "bin" / "python")
    medians = {}
    for module in handlers:
        code = (f"import time,sys; sys.path.insert(0,'functions'); t=time.perf_counter(); "
                f"import {module}; print(time.perf_counter()-t)")
        times = []
        for _ in range(runs):
            out = subprocess.run([python, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
            times.append(float(out.stdout.strip().splitlines()[-1]))
        medians[module] = round(statistics.median(times) * 1000, 1)
    return {"runs": runs, "median_ms": medians, "max_median_ms": max(medians.values())}


# --- 4. code archive size --------------------------------------------------------------------------

def bench_archive() -> dict:
    from infra.packaging import build_code_archive

    with tempfile.TemporaryDirectory() as build_dir:  # keep the repo's build/ untouched
        built = build_code_archive(build_dir=Path(build_dir))
        size = built.path.stat().st_size
    return {"bytes": size, "sha256": built.sha256}


# --- main ------------------------------------------------------------------------------------------

def main() -> None:
    results = {"machine": {"python": platform.python_version(), "platform": platform.platform(),
                           "note": "2 cores, shared, noisy"}}
    results["pair_pack_1m"] = pp = bench_pair_pack()
    sizes = lognormal_sizes()
    results["efficiency_8mib"] = e8 = bench_efficiency(sizes, 8 * MiB)
    results["efficiency_default"] = ed = bench_efficiency(sizes, 50 * MiB)
    results["handler_import"] = hi = bench_imports()
    results["code_archive"] = ca = bench_archive()

    (REPO / "benchmarks" / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    rows = [
        ("pairing + packing 1,000,000 keys: wall time", f"{pp['seconds']} s", "≤ 20 s", pp["seconds"] <= 20),
        ("pairing + packing 1,000,000 keys: peak RSS (growth over baseline)",
         f"{pp['peak_rss_mb']} MB ({pp['rss_growth_mb']} MB)", "≤ 200 MB", pp["peak_rss_mb"] <= 200),
        (f"packing ratio, 20k log-normal, 8 MiB/request ({e8['requests']} / {e8['min_requests']}, "
         f"{e8['binding_bound']} bound)", f"{e8['ratio']}", "≤ 1.02", e8["ratio"] <= 1.02),
        (f"packing ratio, 20k log-normal, default 50 MiB/request ({ed['requests']} / {ed['min_requests']})",
         f"{ed['ratio']}", "≤ 1.02", ed["ratio"] <= 1.02),
        ("handler import time, max of per-handler medians (7 runs)", f"{hi['max_median_ms']} ms", "≤ 300 ms",
         hi["max_median_ms"] <= 300),
        ("code archive size", f"{ca['bytes']:,} B", "≤ 1 MB", ca["bytes"] <= 1_000_000),
    ]
    print("| measure | result | target | ok |")
    print("|---|---|---|---|")
    for name, value, target, ok in rows:
        print(f"| {name} | {value} | {target} | {'yes' if ok else 'NO'} |")
    print()
    print("| handler | median import (ms) |")
    print("|---|---|")
    for module, ms in hi["median_ms"].items():
        print(f"| {module} | {ms} |")


if __name__ == "__main__":
    main()
