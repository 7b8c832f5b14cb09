"""Pulumi entry point: everything lives in ``infra/`` (see ``infra/program.py``)."""

from infra.program import program

program()
