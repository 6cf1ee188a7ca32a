"""The outbox bell: wakes this process's mailer when a transaction that queued mail commits.

``enqueue`` marks its session (``queued``); after that transaction commits, every mailer
that ``listen``s in this process is woken through its event loop, whatever thread committed.
Mail queued by another process is found by the mailer's periodic look (``flush_seconds``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

_MARK = "outbox_queued"
_lock = threading.Lock()
_listeners: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []


def queued(session: Session) -> None:
    """This transaction wrote outbox rows: ring once it commits."""
    session.info[_MARK] = True


def listen() -> asyncio.Event:
    """An event set whenever queued mail commits (call from the mailer's running loop)."""
    bell = asyncio.Event()
    with _lock:
        _listeners.append((asyncio.get_running_loop(), bell))
    return bell


def forget(bell: asyncio.Event) -> None:
    """Stop ringing this event."""
    with _lock:
        _listeners[:] = [(loop, ev) for loop, ev in _listeners if ev is not bell]


def ring() -> None:
    """Wake every listening mailer (safe from any thread)."""
    with _lock:
        listeners = list(_listeners)
    for loop, bell in listeners:
        with contextlib.suppress(RuntimeError):  # its loop has closed meanwhile
            loop.call_soon_threadsafe(bell.set)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.info.pop(_MARK, False):
        ring()


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session, *_: Any) -> None:
    session.info.pop(_MARK, None)
