"""The generated parts of docs/design.md and README.md match the program, and the README names every module.

Regenerate with ``.venv/bin/python docs/generate.py`` when one of these fails.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def generate() -> dict[str, Any]:
    """docs/generate.py's namespace (a script, not a package)."""
    return runpy.run_path(str(REPO / "docs" / "generate.py"), run_name="docs_generate")


@pytest.mark.parametrize(("document", "block"), [
    ("docs/design.md", "state-machine"), ("docs/design.md", "sfn-flow"), ("docs/design.md", "sqs-flow"),
    ("README.md", "config"), ("README.md", "outputs"), ("docs/runbook.md", "function-alarms"),
    ("README.md", "state-machine"), ("README.md", "sqs-flow"),
])
def test_each_generated_block_is_what_the_program_renders_now(
    generate: dict[str, Any], document: str, block: str
) -> None:
    path = REPO / document
    assert generate["rendered"](path, [block]) == path.read_text(), (
        f"{document}#{block} is stale: run .venv/bin/python docs/generate.py")


def test_the_diagrams_show_every_state_and_every_function(generate: dict[str, Any]) -> None:
    import json

    (machine,) = generate["deployment"]("sfn").of_type("aws:sfn/stateMachine:StateMachine")
    definition = json.loads(machine.inputs["definition"])
    diagram = generate["state_machine_diagram"]()
    for state in definition["States"]:
        assert re.search(rf'\b{state}\b', diagram), state
    flow = generate["resource_flow_diagram"]("sqs")
    for handler in generate["deployment"]("sqs").outputs["function_names"]:
        assert f"λ {handler}" in flow


def test_a_block_without_markers_is_an_error(generate: dict[str, Any]) -> None:
    with pytest.raises(KeyError, match="generated:config"):
        generate["replace_block"]("no markers here", "config", "x")


def test_every_output_has_a_meaning(generate: dict[str, Any]) -> None:
    outputs = {*generate["deployment"]("sfn", True).outputs, *generate["deployment"]("sqs", True).outputs}
    assert outputs <= set(generate["OUTPUT_MEANINGS"])


def test_the_readme_layout_names_every_module() -> None:
    text = (REPO / "README.md").read_text()
    layout = re.search(r"## Layout\n\n```\n(.*?)```", text, re.DOTALL)
    assert layout is not None
    words = set(re.findall(r"[a-z_]+", layout.group(1)))
    for package in ("infra", "functions/kendra_ingest"):
        modules = {p.stem for p in (REPO / package).glob("*.py") if p.stem != "__init__"}
        assert modules <= words, f"README Layout misses {sorted(modules - words)} of {package}/"


def test_no_work_path_without_its_run() -> None:
    for document in ("README.md", "docs/design.md"):
        assert not re.search(r"_work/<jobId>/(?!<runId>)", (REPO / document).read_text()), document
