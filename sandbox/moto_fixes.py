"""Small, named patches to moto 5.2.x internals that the sandbox needs (pinned: moto==5.2.5).

Each patch cites the FACTS.md entry ("moto 5.2.x as an embedded AWS") it answers. They patch
internals, so every one checks that its target still exists and fails loudly if moto moved it.

- :func:`cache_jsonpath_parsing` — "JSONPath is re-parsed on every use (caching the parse made
  executions ~6x faster)". jsonpath-ng's parser builds a PLY parser per call; parsed expressions are
  immutable and ``find``/``update_or_create`` do not mutate them, so sharing is safe across threads.
- :func:`scale_waits` — "Retry waits are real sleeps": ``Wait`` states and Retry ``IntervalSeconds``
  (with ``BackoffRate``/``MaxDelaySeconds`` already applied) sleep ``seconds * factor``. Sandbox only:
  factor 1.0 is AWS's timing; the sandbox uses e.g. 0.01 so a 30 s wait costs 0.3 s.

Usage, around (or inside) ``mock_aws``::

    with moto_fixes.applied(wait_scale=0.01):
        ...
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import SimpleNamespace
from typing import Any

_SFN = "moto.stepfunctions.parser.asl"


def _require(obj: Any, attr: str) -> Any:
    if not hasattr(obj, attr):
        raise RuntimeError(f"moto internals changed: {obj!r} has no {attr!r}; re-check sandbox/moto_fixes.py")
    return getattr(obj, attr)


@contextmanager
def cache_jsonpath_parsing(maxsize: int = 4096) -> Iterator[None]:
    """Memoise the JSONPath parse of moto's Step Functions engine (FACTS: ~6x faster executions)."""
    import importlib

    json_path = importlib.import_module(f"{_SFN}.utils.json_path")
    result_path = importlib.import_module(f"{_SFN}.component.common.path.result_path")
    originals = [(json_path, _require(json_path, "parse")), (result_path, _require(result_path, "parse"))]
    try:
        for module, parse in originals:
            module.parse = functools.lru_cache(maxsize=maxsize)(parse)
        yield
    finally:
        for module, parse in originals:
            module.parse = parse


@contextmanager
def scale_waits(factor: float) -> Iterator[None]:
    """Make ``Wait`` states and Retry intervals take ``factor`` of the declared time (FACTS: real sleeps)."""
    import importlib

    if factor < 0:
        raise ValueError("factor must be ≥ 0")
    wait_function = importlib.import_module(f"{_SFN}.component.state.wait.wait_function.wait_function")
    retrier = importlib.import_module(f"{_SFN}.component.common.retry.retrier_decl")
    wait_cls = _require(wait_function, "WaitFunction")
    original_wait = _require(wait_cls, "_wait_interval")
    original_time = _require(retrier, "time")

    def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        # moto's own loop compares whole seconds waited, so a fractional wait would loop forever;
        # wait on the same event (a stopped execution interrupts it) until the scaled time passed.
        deadline = time.monotonic() + max(0.0, float(wait_seconds)) * factor
        while env.is_running():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            env.program_state_event.wait(remaining)

    scaled_time = SimpleNamespace(
        **{name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    )
    scaled_time.sleep = lambda seconds: time.sleep(max(0.0, float(seconds)) * factor)

    wait_cls._wait_interval = _wait_interval
    retrier.time = scaled_time  # retrier_decl calls time.sleep(interval) through its module global
    try:
        yield
    finally:
        wait_cls._wait_interval = original_wait
        retrier.time = original_time


@contextmanager
def applied(*, wait_scale: float = 1.0, jsonpath_cache: bool = True) -> Iterator[None]:
    """Apply the sandbox's moto fixes for the duration of the block."""
    with ExitStack() as stack:
        patches: list[Callable[[], Any]] = []
        if jsonpath_cache:
            patches.append(cache_jsonpath_parsing)
        if wait_scale != 1.0:
            patches.append(lambda: scale_waits(wait_scale))
        for make in patches:
            stack.enter_context(make())
        yield


__all__ = ["applied", "cache_jsonpath_parsing", "scale_waits"]
