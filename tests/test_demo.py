"""The demo (.ci/demo.py) as a story that cannot drift: its output on a fixed clock is
checked in as tests/transcripts/demo.LANG.txt and compared line by line.

Only the random parts of our own Message-IDs (uuid4) are masked. When the demo changes on
purpose, run `UPDATE_TRANSCRIPTS=1 pytest tests/test_demo.py` and review the diff.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRANSCRIPTS = Path(__file__).parent / "transcripts"
_OUR_IDS = re.compile(r"<[0-9a-f]{32}@example\.com>")


def _demo(language: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / ".ci" / "demo.py"), "--lang", language],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == "", done.stderr[-3000:]  # quiet: no library log lines, no warnings
    return _OUR_IDS.sub("<MESSAGE-ID@example.com>", done.stdout)


@pytest.mark.slow  # the whole demo twice: a few minutes
@pytest.mark.parametrize("language", ["en", "de"])
def test_the_demo_tells_the_checked_in_story(language: str) -> None:
    expected_file = TRANSCRIPTS / f"demo.{language}.txt"
    told = _demo(language)
    if os.environ.get("UPDATE_TRANSCRIPTS"):
        expected_file.write_text(told, encoding="utf-8")
    assert told.splitlines() == expected_file.read_text(encoding="utf-8").splitlines()


def test_the_story_says_what_became_of_each_mail() -> None:
    """The lines a reader looks for, so an updated transcript cannot quietly lose them."""
    story = (TRANSCRIPTS / "demo.en.txt").read_text(encoding="utf-8")
    assert ("Shop: \"Offers of the week\" -> dropped by rule 'drop newsletters' "
            "(rules/50-newsletters.toml:5): newsletter; no acknowledgement: dropped") in story
    assert ("-> followup T20261123.0001 (automatic mail (auto-replied) via token); "
            "no acknowledgement: it is an automatic mail") in story
    assert ("acknowledged with customer/out_of_hours (rule 'out-of-hours acknowledgement')"
            in story)
    assert story.count("acknowledged with customer/acknowledgement;") == 0  # one line, one end
    assert "2026-11-23T08:30:00+00:00" in story  # the fixed clock: 09:30 in Berlin
    german = (TRANSCRIPTS / "demo.de.txt").read_text(encoding="utf-8")
    assert "Klappe B war es, danke!" in german and "thank you" not in german
    assert "Klappe B" not in story
