"""#time: agents book time on tickets; totals in `tickets show` (text and JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from gateway.cli import main
from tests.timerkit import BOB, T0, agent_writes, config_file, customer_writes, queued, timer_config


def test_bookings_add_up_and_show(tmp_path: Path, engine: Engine,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = timer_config(engine)
    number = customer_writes(engine, config, "t1", T0).ticket_number
    assert number is not None
    agent_writes(engine, config, number, "#activity Remote support\n#time 30m\n#internal", T0)
    agent_writes(engine, config, number, "#time 1h30m Vor-Ort-Termin\n#time 1,5h\nDone.", T0, n="2")
    agent_writes(engine, config, number, "#time 25h\n#time soon\n#time 0m\n#internal", T0, n="bad",
                 agent=BOB)
    results = [c["results"] for _, c in queued(engine, "agent/command_result")]
    assert results[0][1] == f"#time 30m: done, 30m booked on {number}"
    assert results[1] == [f"#time 1h30m Vor-Ort-Termin: done, 1h 30m booked on {number}",
                          f"#time 1,5h: done, 1h 30m booked on {number}"]
    assert "is not a booking (1 minute to 24 hours)" in results[2][0]
    assert "is not a duration" in results[2][1] and "is not a booking" in results[2][2]
    path = config_file(tmp_path, engine)
    assert main(["--config", str(path), "tickets", "show", number, "--json"]) == 0
    detail = json.loads(capsys.readouterr().out)
    assert detail["time_booked_minutes"] == 210
    assert [(e["agent"], e["minutes"], e["activity"]) for e in detail["time_entries"]] == [
        ("alice", 30, "Remote support"), ("alice", 90, "Vor-Ort-Termin"),
        ("alice", 90, "Remote support")]
    assert main(["--config", str(path), "tickets", "show", number]) == 0
    text = capsys.readouterr().out
    assert "time booked: 3h 30m in 3 entries" in text
    assert "alice  1h 30m  Vor-Ort-Termin" in text


def test_reprocessing_an_agents_mail_books_nothing_twice_and_keeps_it_internal(
        tmp_path: Path, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    config = timer_config(engine)
    number = customer_writes(engine, config, "t1", T0).ticket_number
    assert number is not None
    agent_writes(engine, config, number, "#time 30m\n#remind 2d call back\n#internal\nCalled her.",
                 T0, n="note")
    path = config_file(tmp_path, engine)
    assert main(["--config", str(path), "tickets", "reprocess", number,
                 f"<a-note-{T0.timestamp()}@laptop.example.com>"]) == 0
    assert main(["--config", str(path), "tickets", "show", number, "--json"]) == 0
    detail = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert detail["time_booked_minutes"] == 30 and len(detail["time_entries"]) == 1
    assert [t["kind"] for t in detail["timers"]].count("reminder") == 1
    notes = [m for m in detail["messages"] if "Called her." in m["text"]]
    assert len(notes) == 2 and not any(m["public"] for m in notes)
