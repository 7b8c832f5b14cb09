"""The Pulumi program as a function, so tests and the sandbox run exactly what ``pulumi up`` runs."""

from __future__ import annotations

import pulumi

from infra import config as stack_config
from infra.stack import KendraIngestion, KendraIngestionArgs


def program() -> None:
    """Validate the whole configuration, then declare the stack and export its outputs.

    Nothing is declared before validation passes: a bad key fails with one line naming it and the fix.
    """
    # Made here, not at import: a Config made before the project is known binds the wrong namespace.
    config = stack_config.load(pulumi.Config(stack_config.NAMESPACE), stack=pulumi.get_stack())
    app = KendraIngestion(
        "kendra-ingestion",
        KendraIngestionArgs(config=config, prefix=f"{pulumi.get_project()}-{pulumi.get_stack()}"),
    )
    for name, value in app.outputs.items():
        pulumi.export(name, value)
