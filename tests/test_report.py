"""`ticketgate report` on a seeded month matches figures computed independently here."""

from __future__ import annotations

import csv
import json
import math
import re
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from gateway.cli import main
from tests.reportseed import BERLIN, SLA_TOML, SLOT, Seeded, seed, seed_specs
from tests.timerkit import config_file

SINCE = datetime(2026, 11, 1, tzinfo=BERLIN).astimezone(UTC)
UNTIL = datetime(2026, 11, 30, tzinfo=BERLIN).astimezone(UTC)  # --until 2026-11-29


def business_hours(start: datetime, end: datetime) -> float:
    """Half-hour slots on Monday to Friday, 08:00 to 17:00 Berlin (no holiday in the month)."""
    slots, moment = 0, start
    while moment < end:
        local = moment.astimezone(BERLIN)
        if local.weekday() < 5 and 8 <= local.hour < 17:
            slots += 1
        moment += SLOT
    return slots / 2


def p90(values: list[float]) -> float | None:
    return sorted(values)[math.ceil(0.9 * len(values)) - 1] if values else None


def sla_targets(spec: Seeded) -> tuple[float, float]:
    if spec.channel == "hotline" and spec.priority >= 7:
        return 1.0, 8.0
    return 4.0, 24.0


def expected(specs: list[Seeded], by: str) -> dict[str, dict[str, Any]]:
    """The figures, group by group, straight from the seed."""
    groups: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "opened": 0, "resolved": 0, "first": [], "resolution": [], "sla1": [0, 0], "sla2": [0, 0],
        "booked": 0})

    def keys(spec: Seeded) -> list[str]:
        value = getattr(spec, by)
        return [str(value) if value else "(none)", "all"]

    for spec in specs:
        if spec.merged:  # counts in its target only: its booked time went there
            _book(groups, spec, keys(specs[0]), by)
            continue
        opened = SINCE <= spec.created < UNTIL
        resolved = spec.resolved is not None and SINCE <= spec.resolved < UNTIL
        for key in keys(spec):
            group = groups[key]
            group["opened"] += opened
            group["resolved"] += resolved
            if opened and spec.type != "internal" and spec.first_response is not None:
                group["first"].append(business_hours(spec.created, spec.first_response))
            if resolved and spec.resolved is not None:
                group["resolution"].append(business_hours(spec.created, spec.resolved))
            if opened and spec.type != "internal":
                for index, (target, done) in enumerate(zip(sla_targets(spec),
                                                           (spec.first_response, spec.resolved),
                                                           strict=True)):
                    slot = group["sla1" if index == 0 else "sla2"]
                    if done is not None and done <= UNTIL:
                        slot[0 if business_hours(spec.created, done) <= target else 1] += 1
                    elif business_hours(spec.created, UNTIL) > target:
                        slot[1] += 1
        _book(groups, spec, keys(spec), by)
    return groups


def _book(groups: dict[str, dict[str, Any]], spec: Seeded, keys: list[str], by: str) -> None:
    for at, minutes, activity in spec.bookings:
        if SINCE <= at < UNTIL:
            name = (activity or "(none)") if by == "activity_type" else keys[0]
            groups[name]["booked"] += minutes
            groups["all"]["booked"] += minutes


def pct(pair: list[int]) -> float | None:
    return 100.0 * pair[0] / sum(pair) if sum(pair) else None


@pytest.mark.parametrize("by", ["channel", "priority", "activity_type"])
def test_report_matches_the_seed(tmp_path: Path, engine: Engine, by: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    specs = seed_specs()
    seed(engine, specs)
    path = config_file(tmp_path, engine, SLA_TOML)
    args = ["--config", str(path), "report", "--since", "2026-11-01", "--until", "2026-11-29",
            "--by", by, "--csv", str(tmp_path / "r.csv"), "--html", str(tmp_path / "r.html")]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    want = expected(specs, by)
    got = {g["group"]: g for g in report["groups"]}
    assert set(got) == set(want)
    assert report["groups"][-1]["group"] == "all"
    for name, figures in want.items():
        group = got[name]
        assert (group["opened"], group["resolved"]) == (figures["opened"], figures["resolved"]), name
        for mine, theirs in (("first_response_hours", "first"), ("resolution_hours", "resolution")):
            values = figures[theirs]
            assert group[mine] == {"count": len(values),
                                   "median": statistics.median(values) if values else None,
                                   "p90": p90(values)}, (name, mine)
        assert group["sla_first_response"]["percent"] == pytest.approx(pct(figures["sla1"])), name
        assert group["sla_resolution"]["percent"] == pytest.approx(pct(figures["sla2"])), name
        assert (group["sla_first_response"]["met"], group["sla_first_response"]["missed"]) == \
            tuple(figures["sla1"]), name
        assert group["booked_minutes"] == figures["booked"], name
    assert want["all"]["opened"] > 50 and want["all"]["sla1"][1] > 0 and want["all"]["booked"] > 0
    rows = list(csv.DictReader((tmp_path / "r.csv").open(encoding="utf-8")))
    assert [r["group"] for r in rows] == [g["group"] for g in report["groups"]]
    assert int(rows[-1]["booked_minutes"]) == want["all"]["booked"]
    html = (tmp_path / "r.html").read_text("utf-8")
    assert html.count("<svg") == 4 and "<script" not in html.lower()
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?https?:", html)  # self-contained: no CDN
    assert main(args) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[-1].startswith("all")


def test_report_refuses_bad_dates(tmp_path: Path, engine: Engine,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, engine)
    for since, until in (("yesterday", None), ("2026-11-30", "2026-11-01"), ("2026-02-30", None)):
        extra = ["--until", until] if until else []
        assert main(["--config", str(path), "report", "--since", since, *extra]) == 1
        assert "error: report:" in capsys.readouterr().err
    out = tmp_path / "missing-folder" / "r.html"
    assert main(["--config", str(path), "report", "--since", "2026-11-01", "--html", str(out)]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_hand_count_agrees_with_the_calendar() -> None:
    """The test's own counter, checked on a known case: Friday 16:00 to Monday 10:00 is 3 h."""
    friday = datetime(2026, 11, 27, 16, tzinfo=BERLIN).astimezone(UTC)
    assert business_hours(friday, friday + timedelta(days=2, hours=18)) == 3.0
