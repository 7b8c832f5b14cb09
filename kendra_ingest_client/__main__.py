"""``python -m kendra_ingest_client``: the same command as the ``kendra-ingest`` console script."""

import sys

from kendra_ingest_client.cli import main

sys.exit(main())
