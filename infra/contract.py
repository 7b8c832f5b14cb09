"""The Lambdas' environment contract, imported from the code root in exactly one place.

``functions/`` is the Lambda code root (the deployment archive), not an installed package, so infra
reaches ``kendra_ingest.settings`` by putting ``functions/`` on ``sys.path``. Only ``settings`` is
imported: it needs pydantic alone, never boto3 or handler code, so declaring the stack stays cheap.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: The Lambda code root; it is also the root of the deployment archive (see ``infra/packaging.py``).
FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"

if str(FUNCTIONS_DIR) not in sys.path:
    # Appended, not prepended: an already importable ``kendra_ingest`` (pytest's pythonpath) wins.
    sys.path.append(str(FUNCTIONS_DIR))

from kendra_ingest import settings  # noqa: E402  (needs the path above)

__all__ = ["FUNCTIONS_DIR", "settings"]
