"""``python -m sandbox run|serve|demo``: the embedded AWS sandbox's command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sandbox.run import SandboxError, SandboxOptions, run
from sandbox.serve import DEFAULT_PORT

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = ("sfn", "sqs")


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability between 0 and 1 (got {text})")
    return value


def _index_fields(text: str) -> dict[str, str]:
    allowed = {"STRING_VALUE", "STRING_LIST_VALUE", "LONG_VALUE", "DATE_VALUE"}
    try:
        fields = json.loads(Path(text).read_text())
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read index fields {text}: {exc}") from exc
    if not isinstance(fields, dict) or not all(isinstance(v, str) and v in allowed for v in fields.values()):
        raise argparse.ArgumentTypeError(f"{text}: expected {{name: one of {sorted(allowed)}}}")
    return fields


def _config_pair(text: str) -> tuple[str, object]:
    """``KEY=VALUE``: a stack configuration key; a value that parses as JSON is taken as JSON."""
    from infra.config import KEYS

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (got {text!r})")
    if key not in KEYS:
        raise argparse.ArgumentTypeError(f"unknown stack configuration key {key!r} (known: {', '.join(KEYS)})")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {text})")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number (got {text})") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {text})")
    return value


def _add_kendra_options(p: argparse.ArgumentParser) -> None:
    """The emulator's and the deployed program's options, the same for ``run`` and ``serve``."""
    p.add_argument("--option", choices=OPTIONS, required=True)
    p.add_argument("--kendra-tps", type=float, default=None, help="token bucket per operation (default unlimited)")
    p.add_argument("--kendra-throttle", type=_probability, default=0.0)
    p.add_argument("--kendra-internal-error", type=_probability, default=0.0)
    p.add_argument("--index-fields", type=_index_fields, default=None, metavar="FILE")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--config", type=_config_pair, action="append", default=[], metavar="KEY=VALUE",
                   help="a stack configuration key for the deployed program (JSON values are parsed); repeatable")
    p.add_argument("--indexing-delay", type=_non_negative, default=0.0, metavar="S",
                   help="documents stay PROCESSING for S seconds of the emulator's clock")
    p.add_argument("--index-capacity", type=_count, default=None, metavar="N",
                   help="the index holds at most N documents; a put beyond it raises ServiceQuotaExceededException")


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535, 0 for any free port (got {text})")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run jobs through the deployed program in the embedded AWS")
    _add_kendra_options(r)
    r.add_argument("--input", action="append", type=Path, required=True, metavar="DIR",
                   help="a job folder (batches/**, optional deletes.txt, _control/manifest.json); repeatable")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--duplicate-events", type=int, default=1, metavar="N")
    r.add_argument("--crash-after-kendra", type=_probability, default=0.0, metavar="P")
    r.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for each job")
    r.add_argument("--prefix", action="append", default=[], metavar="P",
                   help="upload each input under P instead of a generated prefix; repeatable, in input order")
    r.add_argument("--s3-latency", type=_non_negative, default=0.0, metavar="MS",
                   help="every S3 request of a function waits MS milliseconds first")
    s = sub.add_parser("serve", help="deploy, then serve the embedded AWS on 127.0.0.1 until SIGINT/SIGTERM")
    _add_kendra_options(s)
    s.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0 picks a free port")
    s.add_argument("--outputs", type=Path, required=True, metavar="FILE",
                   help="written once ready: the stack outputs plus endpoint_url; index.json and calls.json "
                        "go beside it on shutdown")
    d = sub.add_parser("demo", help="run the sample job through both options and print the reports")
    d.add_argument("--out", type=Path, default=ROOT / "build" / "demo")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "demo":
        from sandbox.demo import demo

        return demo(args.out)
    from sandbox.deploy import DeployError

    try:
        if args.command == "serve":
            return _serve(args)
        return _run(args)
    except (SandboxError, DeployError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C during a run: one line, not a traceback
        print("error: interrupted", file=sys.stderr)
        return 130


def _serve(args: argparse.Namespace) -> int:
    from sandbox.serve import serve

    if args.outputs.is_dir():
        print(f"error: --outputs {args.outputs} is a folder; name the file to write", file=sys.stderr)
        return 2
    options = SandboxOptions(
        option=args.option, kendra_tps=args.kendra_tps, kendra_throttle=args.kendra_throttle,
        kendra_internal_error=args.kendra_internal_error, index_fields=args.index_fields, seed=args.seed,
        quiet=args.quiet, config=dict(args.config), indexing_delay_seconds=args.indexing_delay,
        index_capacity=args.index_capacity,
    )
    return serve(options, args.outputs, port=args.port)


def _run(args: argparse.Namespace) -> int:
    for directory in args.input:
        if not (directory / "_control" / "manifest.json").is_file():
            why = "" if directory.is_dir() else " (not a folder)" if directory.exists() else " (no such folder)"
            print(f"error: {directory} has no _control/manifest.json{why}", file=sys.stderr)
            return 2
    if args.out.exists() and not args.out.is_dir():
        print(f"error: --out {args.out} is a file; name a folder", file=sys.stderr)
        return 2
    if args.prefix and len(args.prefix) != len(args.input):
        print(f"error: {len(args.prefix)} --prefix for {len(args.input)} --input (give one per input, or none)",
              file=sys.stderr)
        return 2
    if args.duplicate_events < 1:
        print("error: --duplicate-events must be at least 1", file=sys.stderr)
        return 2
    options = SandboxOptions(
        option=args.option, kendra_tps=args.kendra_tps, kendra_throttle=args.kendra_throttle,
        kendra_internal_error=args.kendra_internal_error, index_fields=args.index_fields,
        duplicate_events=args.duplicate_events, crash_after_kendra=args.crash_after_kendra, seed=args.seed,
        quiet=args.quiet, timeout_seconds=args.timeout, config=dict(args.config),
        indexing_delay_seconds=args.indexing_delay, s3_latency_ms=args.s3_latency,
        index_capacity=args.index_capacity,
    )
    return run(args.input, args.out, options, prefixes=args.prefix or None)


if __name__ == "__main__":
    sys.exit(main())
