"""File source: .eml files, mbox files and Maildirs, fed through the same pipeline."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileMail:
    """One mail read from disk, named for the output line."""

    label: str
    data: bytes
    error: str | None = None  # the file could not be read: data is empty


def read_mails(paths: list[Path]) -> Iterator[FileMail]:
    """Every mail under the given files and folders, in a stable order; errors as OSError."""
    for path in paths:
        if path.is_dir():
            if _is_maildir(path):
                yield from _maildir(path)
            else:
                for child in sorted(p for p in path.rglob("*") if p.is_file()):
                    if child.name.lower() in ("readme.md", ".gitkeep") or child.suffix == ".json":
                        continue
                    yield from _readable(child)
        else:
            yield from _readable(path)


def _readable(path: Path) -> Iterator[FileMail]:
    """The mails of one file, or one error entry naming why it could not be read."""
    try:
        yield from _file(path)
    except (OSError, mailbox.Error) as exc:
        yield FileMail(str(path), b"", error=getattr(exc, "strerror", None) or str(exc))


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new"))


def _maildir(path: Path) -> Iterator[FileMail]:
    box = mailbox.Maildir(path, create=False)
    for key in sorted(box.iterkeys()):
        with box.get_file(key) as handle:
            yield FileMail(f"{path}:{key}", handle.read())


def _file(path: Path) -> Iterator[FileMail]:
    data = path.read_bytes()
    if data.startswith(b"From ") and _mbox_separators(data) > 0:
        box = mailbox.mbox(path, create=False)
        try:
            for index, key in enumerate(box.iterkeys()):
                # get_bytes leaves out the mbox separator line
                yield FileMail(f"{path}#{index + 1}", box.get_bytes(key))
        finally:
            box.close()
        return
    yield FileMail(str(path), data)


def _mbox_separators(data: bytes) -> int:
    """How many mbox "From " separator lines the data has (0: an .eml that starts oddly)."""
    first = data.split(b"\n", 1)[0]
    return 1 + data.count(b"\nFrom ") if b"@" in first or first.count(b" ") >= 2 else 0
