"""The ticketgate command line; one module per command group, wired together in `app`."""

from gateway.cli.app import main

__all__ = ["main"]
