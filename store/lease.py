"""Mailbox leases: one process at a time drains a mailbox, taken over when its holder dies.

Two processes moving the same IMAP messages at once can make the server copy them twice,
so a mailbox has one holder. PostgreSQL: a session advisory lock on a connection held open
(released by the server when the holder's connection dies). SQLite (one host by nature): a
lease row naming host and pid, taken over when that pid is gone or the lease went stale.
On PostgreSQL the row only shows who holds the lock (for ``/healthz``), renewed every 30 s.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from store.db import transaction
from store.models import MailboxLease, utcnow

log = logging.getLogger("gateway.lease")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lease:
    """The right to drain one mailbox; call hold() before each pass."""

    def __init__(self, engine: Engine, mailbox: str, stale_after: float = 120.0) -> None:
        self.engine, self.mailbox = engine, mailbox
        self.stale_after = timedelta(seconds=stale_after)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._pg: Connection | None = None
        self._noted: datetime | None = None
        digest = hashlib.sha256(f"ticketgate:{mailbox}".encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)

    def hold(self) -> bool:
        """Take or renew the lease; False while another live process holds it."""
        if self.engine.dialect.name == "postgresql":
            return self._hold_pg()
        return self._hold_row()

    def _hold_pg(self) -> bool:
        if self._pg is not None:
            try:
                self._pg.execute(text("SELECT 1"))
                self._pg.commit()
                self._note_holder()
                return True
            except DBAPIError:
                self._drop_pg()
        conn = self.engine.connect()
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar())
        conn.commit()
        if got:
            self._pg = conn
            self._noted = None
            self._note_holder()
        else:
            conn.close()
        return got

    def _note_holder(self) -> None:
        """Who holds the advisory lock, in the lease table too, for health checks (each 30 s)."""
        now = utcnow()
        if self._noted is not None and now - self._noted < timedelta(seconds=30):
            return
        with transaction(self.engine) as session:
            row = session.get(MailboxLease, self.mailbox)
            if row is None:
                session.add(MailboxLease(mailbox=self.mailbox, holder=self.holder,
                                         host=socket.gethostname(), pid=os.getpid(), renewed_at=now))
            else:
                row.holder, row.host, row.pid, row.renewed_at = (self.holder, socket.gethostname(),
                                                                 os.getpid(), now)
        self._noted = now

    def _drop_pg(self) -> None:
        conn, self._pg = self._pg, None
        if conn is not None:
            with contextlib.suppress(DBAPIError):
                conn.invalidate()  # closing the session releases the advisory lock

    def _hold_row(self) -> bool:
        now = utcnow()
        host = socket.gethostname()
        with transaction(self.engine) as session:
            row = session.get(MailboxLease, self.mailbox)
            if row is not None and row.holder != self.holder:
                renewed = row.renewed_at if row.renewed_at.tzinfo else row.renewed_at.replace(
                    tzinfo=now.tzinfo)
                if row.host == host:  # one host: the pid says it all, however long a pass takes
                    if _pid_alive(row.pid):
                        return False
                elif now - renewed < self.stale_after:
                    return False
                log.warning("%s taking over the lease of %s", self.mailbox, row.holder)
            if row is None:
                row = MailboxLease(mailbox=self.mailbox, holder=self.holder, host=host,
                                   pid=os.getpid(), renewed_at=now)
                session.add(row)
            else:
                row.holder, row.host, row.pid, row.renewed_at = self.holder, host, os.getpid(), now
        return True

    def release(self) -> None:
        """Give the mailbox up (on shutdown)."""
        if self.engine.dialect.name == "postgresql":
            self._drop_pg()
        with transaction(self.engine) as session:
            row: Any = session.get(MailboxLease, self.mailbox)
            if row is not None and row.holder == self.holder:
                session.delete(row)
