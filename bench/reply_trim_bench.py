"""Reply trimming: ticketgate's trimmer against mail-parser-reply on the same reply samples.

Counts exact-text hits on the table of ``tests/reply_samples`` (what the customer must
receive), replies whose answer lost a line of the agent's (bottom-posted and inline
samples), and the time per reply. mail-parser-reply is not a dependency of ticketgate:
install it into a scratch venv outside the repository and point PYTHONPATH at it, e.g.

    python3 -m venv /tmp/mpr && /tmp/mpr/bin/pip install mail-parser-reply
    PYTHONPATH=$(echo /tmp/mpr/lib/python3*/site-packages) .venv/bin/python bench/reply_trim_bench.py

Without it only ticketgate's trimmer is measured.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import write_section
from gateway.agents.quoting import trim_reply
from tests.reply_samples import Sample, all_samples

Trimmer = Callable[[Sample], str]


def library_trimmers() -> dict[str, Trimmer]:
    """mail-parser-reply used three ways, when it is installed."""
    try:
        from mailparser_reply import EmailReplyParser  # type: ignore[import-not-found, unused-ignore]
        from mailparser_reply.constants import MAIL_LANGUAGES  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return {}
    every = [code for code in MAIL_LANGUAGES if code != "david"]

    def latest(sample: Sample) -> str:
        return str(EmailReplyParser(languages=every).parse_reply(sample.text) or "")

    def body(sample: Sample) -> str:
        replies = EmailReplyParser(languages=every).read(sample.text).replies
        return str(replies[0].body) if replies else ""

    def told(sample: Sample) -> str:
        replies = EmailReplyParser(languages=[sample.language]).read(sample.text).replies
        return str(replies[0].body) if replies else ""

    return {"mail-parser-reply parse_reply (all languages)": latest,
            "mail-parser-reply replies[0].body (all languages)": body,
            "mail-parser-reply replies[0].body (told the language)": told}


def lost_answer(sample: Sample, got: str) -> bool:
    """A bottom-posted or inline answer with a line of the agent's missing."""
    if sample.style not in ("bottom", "inline"):
        return False
    answers = [x.strip() for x in sample.expected.splitlines() if x.strip() and not x.startswith(">")]
    lines = {x.strip() for x in got.splitlines()}
    return any(x not in lines for x in answers)


def measure(trim: Trimmer, samples: list[Sample]) -> tuple[int, int, list[str], float]:
    """Exact hits, lost answers, names of the misses, microseconds per reply."""
    hits, lost, misses = 0, 0, []
    start = time.perf_counter()
    for sample in samples:
        got = trim(sample).strip()
        if got == sample.expected:
            hits += 1
        else:
            misses.append(sample.name)
        lost += lost_answer(sample, got)
    micros = (time.perf_counter() - start) / len(samples) * 1e6
    return hits, lost, misses, micros


def main() -> None:
    samples = all_samples()
    answered = sum(s.style in ("bottom", "inline") for s in samples)
    trimmers: dict[str, Trimmer] = {"ticketgate trim_reply": lambda s: trim_reply(s.text)}
    trimmers.update(library_trimmers())
    rows = [f"{len(samples)} samples ({answered} bottom-posted or inline).", "",
            "| trimmer | exact text | answers that lost a line | µs per reply |", "|---|---|---|---|"]
    details = []
    for name, trim in trimmers.items():
        hits, lost, misses, micros = measure(trim, samples)
        rows.append(f"| {name} | {hits}/{len(samples)} | {lost}/{answered} | {micros:.0f} |")
        details.append(f"- {name}, misses: {', '.join(misses) or 'none'}")
    if len(trimmers) == 1:
        rows.append("\nmail-parser-reply not installed: see this script's docstring.")
    report = "\n".join([*rows, "", *details])
    print(report)
    command = "PYTHONPATH=<mail-parser-reply> .venv/bin/python bench/reply_trim_bench.py"
    write_section("reply trimming", command, report)


if __name__ == "__main__":
    main()
