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


def total_bytes(paths: list[Path]) -> int:
    """The size of everything read_mails reads, for a progress bar (0 when it cannot tell)."""
    total = 0
    for path in paths:
        try:
            files = (p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            total += sum(p.stat().st_size for p in files)
        except OSError:
            return 0
    return total


def _file(path: Path) -> Iterator[FileMail]:
    """An mbox (told by its first line alone, never read whole) or one .eml file."""
    with path.open("rb") as handle:
        first = handle.readline(4096)
    if first.startswith(b"From ") and _is_mbox_separator(first):
        box = mailbox.mbox(path, create=False)
        try:
            for index, key in enumerate(box.iterkeys()):
                # get_bytes leaves out the mbox separator line
                yield FileMail(f"{path}#{index + 1}", box.get_bytes(key))
        finally:
            box.close()
        return
    yield FileMail(str(path), path.read_bytes())


def _is_mbox_separator(first: bytes) -> bool:
    """An mbox "From " line ("From addr date"), not an .eml that starts oddly ("From: ...")."""
    line = first.split(b"\n", 1)[0]
    return b"@" in line or line.count(b" ") >= 2
