"""Deployment artifacts: one deterministic archive of ``functions/`` and the arm64 dependencies layer.

Code archive: built in-process with sorted entries, fixed timestamps (1980-01-01) and fixed
permissions, without ``__pycache__``, ``*.pyc``, tests or boto3 (the runtime provides it), so the same
code always gives the same bytes and importing handlers in a test or the sandbox changes nothing.

Dependencies layer: the runtime packages, pinned with hashes in ``requirements.lock``, installed by pip
for Linux arm64 / CPython 3.13 into ``build/`` and zipped the same deterministic way, by an explicit
step: ``./dev layer`` (``python -m infra.packaging layer``), once per set of pins. The program only
references the zip, so ``pulumi preview`` and ``pulumi up`` never run pip or reach PyPI; a missing zip
fails naming the command. ``KENDRA_INGESTION_LAYER=skip`` references the zip without requiring it: for
running the program under Pulumi mocks (tests, sandbox), where no engine ever reads the archive.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pulumi

from infra.contract import FUNCTIONS_DIR

REPO_DIR = FUNCTIONS_DIR.parent
#: In a checkout, ``build/`` beside the code; installed (``pip install``), ``build/`` of the program that
#: runs (the Pulumi project's directory), never site-packages. ``KENDRA_INGESTION_BUILD_DIR`` overrides both.
BUILD_DIR = Path(
    os.environ.get("KENDRA_INGESTION_BUILD_DIR")
    or (REPO_DIR / "build" if (REPO_DIR / "pyproject.toml").exists() else Path.cwd() / "build")
)
#: The hashed pins; installed, the copy shipped as package data of ``infra``.
LOCK_FILE = Path(__file__).resolve().parent / "requirements.lock"

#: The earliest timestamp a zip entry can hold: every entry gets it, so bytes do not depend on mtimes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
#: rw-r--r-- regular file, for every entry.
ZIP_FILE_MODE = 0o100644 << 16
#: Never shipped: bytecode (Lambda compiles on load), tests, and the SDK the runtime already has.
EXCLUDED_DIRS = frozenset({"__pycache__", "tests", "boto3", "botocore", "s3transfer"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")

#: Runtime dependencies of the handlers and their closure, minus what the Lambda runtime provides
#: (boto3, botocore, s3transfer, urllib3, jmespath's users aside). pydantic-core and wrapt are native.
LAYER_PACKAGES = (
    "aws-lambda-powertools",
    "aws-xray-sdk",
    "jmespath",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-extensions",
    "typing-inspection",
    "wrapt",
)
#: Lambda python3.13 runs on Amazon Linux 2023 (glibc 2.34): manylinux2014 and manylinux_2_28 wheels fit.
LAYER_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
LAYER_PYTHON_VERSION = "3.13"
LAYER_ENV = "KENDRA_INGESTION_LAYER"


@dataclass(frozen=True)
class BuiltArchive:
    """A zip on disk and the SHA-256 of its bytes."""

    path: Path
    sha256: str

    def archive(self) -> pulumi.FileArchive:
        """The zip as a Pulumi archive (Pulumi hashes a zip file by its bytes)."""
        return pulumi.FileArchive(str(self.path))


def source_files(root: Path) -> list[tuple[str, Path]]:
    """``(archive name, path)`` of every file under ``root`` that ships, sorted by archive name."""
    entries = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in EXCLUDED_DIRS and not d.startswith(".")]
        for file in files:
            if file.endswith(EXCLUDED_SUFFIXES) or file.startswith("."):
                continue
            path = Path(directory, file)
            entries.append((path.relative_to(root).as_posix(), path))
    return sorted(entries)


def zip_bytes(entries: Iterable[tuple[str, Path]]) -> bytes:
    """A deterministic zip of ``entries`` (sorted, fixed timestamp and permissions, deflated)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.external_attr = ZIP_FILE_MODE
            info.create_system = 3  # Unix, whatever machine builds it
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return buffer.getvalue()


def write_if_changed(path: Path, data: bytes) -> BuiltArchive:
    """Write ``data`` atomically unless ``path`` already holds exactly it."""
    digest = hashlib.sha256(data).hexdigest()
    if not (path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == digest):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(data)
        partial.replace(path)
    return BuiltArchive(path, digest)


def build_code_archive(root: Path = FUNCTIONS_DIR, build_dir: Path = BUILD_DIR) -> BuiltArchive:
    """The deployment archive of the Lambda code root (``build/functions.zip``)."""
    return write_if_changed(build_dir / "functions.zip", zip_bytes(source_files(root)))


def layer_requirements(lock_file: Path = LOCK_FILE, packages: Iterable[str] = LAYER_PACKAGES) -> str:
    """The pins (with their hashes) of ``packages`` cut from the hashed lock, as a requirements file."""
    wanted = set(packages)
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lock_file.read_text().splitlines():
        stripped = line.strip()
        if current is not None and stripped.startswith("--hash"):
            current.append(stripped.rstrip("\\").strip())
            continue
        current = None
        if stripped and not stripped.startswith("#") and not line.startswith(" "):
            name = stripped.split("==", 1)[0].strip().lower()
            if name in wanted:
                current = blocks[name] = [stripped.rstrip("\\").strip()]
    missing = sorted(wanted - blocks.keys())
    if missing:
        raise ValueError(f"{lock_file.name} pins no {', '.join(missing)}; run ./dev lock")
    return "".join(" \\\n    ".join(blocks[name]) + "\n" for name in sorted(blocks))


def pip_install_command(requirements: Path, target: Path) -> list[str]:
    """pip, installing exactly the hashed pins as Linux arm64 CPython 3.13 wheels, without bytecode."""
    platforms = [arg for platform in LAYER_PLATFORMS for arg in ("--platform", platform)]
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-compile",
        "--no-deps",
        "--require-hashes",
        "--only-binary=:all:",
        *platforms,
        "--implementation",
        "cp",
        "--python-version",
        LAYER_PYTHON_VERSION,
        "--target",
        str(target),
        "-r",
        str(requirements),
    ]


class LayerNotBuilt(pulumi.RunError):
    """The dependencies layer zip for the current pins is missing: ``./dev layer`` builds it."""


def layer_path(build_dir: Path = BUILD_DIR) -> Path:
    """Where the layer zip of the current pins lives (``build/layer-<digest of pins>.zip``)."""
    requirements = layer_requirements()
    key = hashlib.sha256((requirements + repr(LAYER_PLATFORMS) + LAYER_PYTHON_VERSION).encode()).hexdigest()[:16]
    return build_dir / f"layer-{key}.zip"


def dependencies_layer(build_dir: Path = BUILD_DIR) -> BuiltArchive:
    """The dependencies layer zip (``python/...``) the program deploys: it is only *referenced* here.

    The program never runs pip, so ``pulumi preview`` and ``pulumi up`` need no network: ``./dev layer``
    (:func:`build_layer`) builds the zip once per set of pins. A missing zip fails with that command,
    except with ``KENDRA_INGESTION_LAYER=skip`` (programs run under mocks: tests, sandbox), where nothing
    reads the archive.
    """
    path = layer_path(build_dir)
    if path.exists():
        return BuiltArchive(path, hashlib.sha256(path.read_bytes()).hexdigest())
    if os.environ.get(LAYER_ENV) == "skip":
        return BuiltArchive(path, "")
    raise LayerNotBuilt(
        f"the Lambda dependencies layer {path} is not built for the current requirements.lock; "
        "run ./dev layer (installed: python -m infra.packaging layer), then pulumi preview/up again"
    )


def build_layer(build_dir: Path = BUILD_DIR) -> BuiltArchive:
    """Build the dependencies layer zip with pip (PyPI, or a configured index), unless it already exists."""
    path = layer_path(build_dir)
    if path.exists():
        return BuiltArchive(path, hashlib.sha256(path.read_bytes()).hexdigest())
    stem = path.stem
    staging = build_dir / stem
    requirements_file = build_dir / f"{stem}.txt"
    requirements_file.parent.mkdir(parents=True, exist_ok=True)
    requirements_file.write_text(layer_requirements())
    subprocess.run(pip_install_command(requirements_file, staging / "python"), check=True)
    entries = [(f"python/{name}", file) for name, file in source_files(staging / "python")]
    return write_if_changed(path, zip_bytes(entries))


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.packaging layer``: build the layer (what ``./dev layer`` runs) and print its path."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["layer"]:
        print("usage: python -m infra.packaging layer", file=sys.stderr)
        return 2
    print(build_layer().path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
