"""Rule evaluation cost: 200 rules against one mail, against the baseline of parsing it."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import write_section
from gateway.intake.guard import inspect
from gateway.intake.parse import parse_mail
from gateway.rules.interpret import evaluate
from gateway.rules.loader import Vocabulary, load_rules
from gateway.rules.model import Facts, FileFact
from gateway.templates import TEMPLATE_NAMES

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "baseline-german-qp.eml"
RULE_SHAPES = [
    'when.subject = {{ matches = "(?i)\\\\b(outage|ausfall|kunde{i})\\\\b" }}',
    'when.from = {{ domain = ["customer{i}.example", "other{i}.example"] }}',
    'when.header = {{ "X-Source" = "portal{i}" }}',
    'when.any = [{{ body = {{ contains = "keyword{i}" }} }}, '
    '{{ attachment = {{ name = {{ matches = "(?i)^report{i}" }} }} }}]',
    'when.source = "email"\nwhen.subject = {{ contains = "drucker{i}" }}',
]


def make_rules(folder: Path, count: int) -> None:
    """count realistic rules (mostly not firing, as in production) over several files."""
    per_file = 20
    for start in range(0, count, per_file):
        text = []
        for i in range(start, min(start + per_file, count)):
            shape = RULE_SHAPES[i % len(RULE_SHAPES)].format(i=i)
            text.append(f'[[rule]]\nname = "rule {i}"\non = "ticket.created"\n{shape}\n'
                        f"then.priority = {1 + i % 9}\nthen.tag = \"t{i}\"\n")
        (folder / f"{start:04d}.toml").write_text("\n".join(text), encoding="utf-8")


def timed(fn, rounds: int) -> list[float]:  # type: ignore[no-untyped-def]
    """Seconds per call, one sample per call."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    """Measure, print, and record in bench/README.md."""
    raw = FIXTURE.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        make_rules(Path(tmp), 200)
        rules, errors = load_rules(Path(tmp), Vocabulary(templates=TEMPLATE_NAMES))
    assert not errors and len(rules) == 200
    mail = parse_mail(raw)
    verdict = inspect(mail, frozenset())
    sender = mail.from_
    facts = Facts(sender=sender,
                  subject=mail.subject, body=mail.text, headers=mail.headers,
                  attachments=tuple(FileFact(a.filename, a.content_type) for a in mail.attachments),
                  auto_submitted=verdict.automatic, local_time=datetime.now(UTC))
    evaluate(rules, "ticket.created", facts)  # warm up
    rule_samples = timed(lambda: evaluate(rules, "ticket.created", facts), 2000)
    parse_samples = timed(lambda: parse_mail(raw), 200)
    rule_us = statistics.median(rule_samples) * 1e6
    rule_p99 = sorted(rule_samples)[int(len(rule_samples) * 0.99)] * 1e6
    parse_us = statistics.median(parse_samples) * 1e6
    table = (
        "| what | median | p99 |\n|---|---|---|\n"
        f"| evaluate 200 rules, one mail | {rule_us:.0f} µs | {rule_p99:.0f} µs |\n"
        f"| baseline: parse the same mail (`parse_mail`) | {parse_us:.0f} µs | "
        f"{sorted(parse_samples)[int(len(parse_samples) * 0.99)] * 1e6:.0f} µs |\n\n"
        f"Target: well under 1 ms per mail for 200 rules: "
        f"{'met' if rule_us < 1000 else 'NOT met'} ({rule_us / 1000:.2f} ms, "
        f"{rule_us / parse_us:.0%} of the parse cost of the same mail)."
    )
    print(table)
    write_section("rules", "python bench/rules_bench.py", table)


if __name__ == "__main__":
    main()
