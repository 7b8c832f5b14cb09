"""The Pulumi program as a function, so tests and the sandbox run exactly what ``pulumi up`` runs."""

from __future__ import annotations

import pulumi

from infra import config as stack_config
from infra import tagging
from infra.stack import KendraIngestion, KendraIngestionArgs


def program() -> None:
    """Validate the whole configuration, then declare the stack and export its outputs.

    Nothing is declared before validation passes: a bad key fails with one line naming it and the fix.
    """
    # Made here, not at import: a Config made before the project is known binds the wrong namespace. The
    # namespace is the project's, so a renamed project reads (and its error messages name) its own keys.
    config = stack_config.load(pulumi.Config(), stack=pulumi.get_stack())
    tagging.register()
    # Named after the project: physical names are <project>-<stack>-...; the aliases keep stacks deployed
    # before child names carried the component's name (0.1) updating in place.
    app = KendraIngestion(pulumi.get_project(), KendraIngestionArgs(config=config, legacy_aliases=True))
    for name, value in app.outputs.items():
        pulumi.export(name, value)
