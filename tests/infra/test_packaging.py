"""The deployment archive is deterministic and clean; the dependencies layer is pinned and never built
by tests."""

from __future__ import annotations

import compileall
import importlib
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from infra import packaging
from infra.contract import FUNCTIONS_DIR


def test_same_code_same_bytes_even_after_importing_every_handler(tmp_path: Path) -> None:
    first = packaging.build_code_archive(build_dir=tmp_path)
    handlers = sorted(p.stem for p in FUNCTIONS_DIR.glob("*.py"))
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, False
    try:
        for name in handlers:
            importlib.import_module(name)
        compileall.compile_dir(FUNCTIONS_DIR, quiet=1)  # bytecode exists now, imported earlier or not
    finally:
        sys.dont_write_bytecode = writes_bytecode
    assert any(FUNCTIONS_DIR.rglob("__pycache__"))
    second = packaging.build_code_archive(build_dir=tmp_path)
    assert second.sha256 == first.sha256
    assert second.path.read_bytes() == first.path.read_bytes()


def test_the_archive_holds_only_shipping_files_with_fixed_metadata(tmp_path: Path) -> None:
    root = tmp_path / "functions"
    shutil.copytree(FUNCTIONS_DIR, root, ignore=shutil.ignore_patterns("__pycache__"))
    for junk in (
        "tests/test_x.py",
        "boto3/__init__.py",
        "kendra_ingest/__pycache__/x.cpython-311.pyc",
        "stray.pyc",
        ".hidden",
    ):
        (root / junk).parent.mkdir(parents=True, exist_ok=True)
        (root / junk).write_text("junk")
    built = packaging.build_code_archive(root, tmp_path / "build")
    with zipfile.ZipFile(built.path) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert not [
        n
        for n in names
        if "__pycache__" in n or n.endswith(".pyc") or n.startswith(("tests/", "boto3/")) or "/." in f"/{n}"
    ]
    assert {n for n in names if "/" not in n} >= {p.name for p in FUNCTIONS_DIR.glob("*.py")}
    assert "kendra_ingest/settings.py" in names
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}


def test_the_archive_changes_when_the_code_does(tmp_path: Path) -> None:
    root = tmp_path / "functions"
    shutil.copytree(FUNCTIONS_DIR, root, ignore=shutil.ignore_patterns("__pycache__"))
    before = packaging.build_code_archive(root, tmp_path / "build").sha256
    (root / "load_manifest.py").write_text((root / "load_manifest.py").read_text() + "\n# changed\n")
    assert packaging.build_code_archive(root, tmp_path / "build").sha256 != before


def test_the_layer_pins_every_runtime_dependency_with_hashes() -> None:
    requirements = packaging.layer_requirements()
    blocks = requirements.strip().split("\n")
    pinned = {line.split("==")[0] for line in blocks if "==" in line}
    assert pinned == set(packaging.LAYER_PACKAGES)
    assert requirements.count("--hash=sha256:") >= len(pinned)
    assert not {"boto3", "botocore", "pulumi", "moto"} & pinned


def test_the_layer_is_installed_for_linux_arm64_python_313_without_bytecode(tmp_path: Path) -> None:
    command = packaging.pip_install_command(tmp_path / "req.txt", tmp_path / "python")
    joined = " ".join(command)
    for flag in (
        "--no-compile",
        "--no-deps",
        "--require-hashes",
        "--only-binary=:all:",
        "--platform manylinux2014_aarch64",
        "--implementation cp",
        "--python-version 3.13",
    ):
        assert flag in joined


def test_tests_never_build_the_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(packaging.LAYER_ENV, "skip")
    monkeypatch.setattr(packaging.subprocess, "run", lambda *a, **k: pytest.fail("pip ran"))
    layer = packaging.dependencies_layer(tmp_path)
    assert layer.path.parent == tmp_path and not layer.path.exists()


def test_a_cached_layer_is_reused_without_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packaging.subprocess, "run", lambda *a, **k: pytest.fail("pip ran"))
    expected = packaging.layer_path(tmp_path)
    expected.write_bytes(b"cached")
    assert packaging.dependencies_layer(tmp_path).path == expected
    assert packaging.build_layer(tmp_path).path == expected


def test_the_program_never_builds_the_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """preview and up do no pip or network work: a missing layer names the explicit step."""
    monkeypatch.delenv(packaging.LAYER_ENV, raising=False)
    monkeypatch.setattr(packaging.subprocess, "run", lambda *a, **k: pytest.fail("pip ran"))
    with pytest.raises(packaging.LayerNotBuilt, match=r"run ./dev layer"):
        packaging.dependencies_layer(tmp_path)


def test_the_layer_step_runs_pip_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def pip(command: list[str], check: bool) -> None:
        calls.append(command)
        target = Path(command[command.index("--target") + 1])
        (target / "pydantic").mkdir(parents=True)
        (target / "pydantic" / "__init__.py").write_text("")

    monkeypatch.setattr(packaging.subprocess, "run", pip)
    built = packaging.build_layer(tmp_path)
    assert len(calls) == 1 and zipfile.ZipFile(built.path).namelist() == ["python/pydantic/__init__.py"]
    assert packaging.dependencies_layer(tmp_path).path == built.path


def test_the_wheel_declares_what_a_reusing_program_needs() -> None:
    """``pip install .`` ships the component, the Lambda code root it archives, its templates and pins."""
    import tomllib

    repo = Path(__file__).resolve().parents[2]
    setuptools = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = set(setuptools["packages"])
    assert {"infra", "functions", "functions.kendra_ingest", "kendra_ingest_client"} <= packages
    assert all((repo / p.replace(".", "/")).is_dir() for p in packages)
    assert not {"sandbox", "tests", "benchmarks"} & packages
    data = setuptools["package-data"]["infra"]
    assert "state_machines/*.asl.json" in data and "requirements.lock" in data
    assert (repo / "infra" / "requirements.lock").read_bytes() == (repo / "requirements.lock").read_bytes()
