"""The CLI tests' helpers: a minimal config file, and main() run with its output captured."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main


def config_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/t.db"\n'
        '[[channel]]\nname = "support"\naddress = "support@example.com"\n' + extra,
        encoding="utf-8",
    )
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err
