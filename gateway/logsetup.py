"""Log levels for the command line: our own INFO lines, libraries' chatter only with -v."""

from __future__ import annotations

import logging
import sys

# Libraries that log routine INFO lines (Alembic at every start, aioimaplib per connection,
# httpx per request).
CHATTY = ("alembic", "aioimaplib", "httpx")


def configure_logging(verbose: bool, command: str) -> None:
    """-v: everything at DEBUG; otherwise INFO for `run`, WARNING else, libraries at WARNING."""
    level = logging.DEBUG if verbose else logging.INFO if command == "run" else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
