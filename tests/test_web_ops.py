"""Operations: /metrics scraped and parsed, /healthz and its 503, the HTTP door inside `ticketgate run`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from gateway.outbound.worker import OutboxWorker
from gateway.pipeline import STAGES
from gateway.web.health import Health, check, probe_engine
from tests.conftest import ROOT, _toml, mail, mailbox_table, start_service
from tests.servers import postgres
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer, free_port
from tests.web_fixtures import Door, door_config


def scrape(door: Door) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, parsed by prometheus-client's own parser."""
    answer = door.client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def families(door: Door) -> set[str]:
    return {f.name for f in text_string_to_metric_families(door.client.get("/metrics").text)}


async def test_metrics_count_mails_stages_outbox_and_requests(door: Door) -> None:
    before = scrape(door)
    assert door.create().status_code == 201
    assert door.create(subject="").status_code == 422
    assert door.client.get("/no/such/page").status_code == 404
    await OutboxWorker(door.engine, door.config).flush()  # the mailer, as the service runs it
    after = scrape(door)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("ticketgate_mails_total", outcome="created", source="portal") == 1
    for stage in STAGES:
        assert grew("ticketgate_stage_seconds_count", stage=stage.__name__) == 1, stage.__name__
    assert grew("ticketgate_outbox_mails_total", outcome="sent") == 2
    assert grew("ticketgate_http_requests_total", method="POST", route="/api/v1/tickets",
                status="201") == 1
    assert grew("ticketgate_http_requests_total", method="POST", route="/api/v1/tickets",
                status="422") == 1
    assert grew("ticketgate_http_requests_total", method="GET", route="(unmatched)", status="404") == 1
    assert {"ticketgate_imap_reconnects", "ticketgate_webhook_deliveries",
            "ticketgate_http_request_seconds"} <= families(door)


async def test_metrics_show_the_outbox_backlog_and_how_long_the_oldest_mail_waits(door: Door) -> None:
    assert door.create().status_code == 201  # an acknowledgement and an agent note, due now
    waiting = scrape(door)
    assert waiting[("ticketgate_outbox_backlog", (("state", "due"),))] == 2
    assert waiting[("ticketgate_outbox_oldest_due_seconds", ())] >= 0
    await OutboxWorker(door.engine, door.config).flush()
    sent = scrape(door)
    assert sent[("ticketgate_outbox_backlog", (("state", "due"),))] == 0
    assert sent[("ticketgate_outbox_oldest_due_seconds", ())] == 0


def test_healthz_reports_database_and_backlogs_and_is_503_when_the_database_is_gone(
        door: Door, db_url: str, tmp_path: Path) -> None:
    healthy = door.client.get("/healthz")
    assert healthy.status_code == 200, healthy.text
    report = healthy.json()
    assert report["status"] == "ok" and report["database"]["ok"] is True
    door.create()
    outbox = door.client.get("/healthz").json()["outbox"]
    assert outbox["waiting"] == 2 and outbox["oldest_waiting"]
    moved = tmp_path.with_name(tmp_path.name + "-moved")
    if db_url.startswith("sqlite"):
        tmp_path.rename(moved)  # the database file's folder is gone
    else:
        postgres.drop_database(db_url)  # WITH (FORCE): every connection is cut
    try:
        gone = door.client.get("/healthz")
        assert gone.status_code == 503, gone.text
        assert gone.json()["status"] == "unhealthy" and gone.json()["database"]["ok"] is False
        assert gone.json()["database"]["error"]
        if not db_url.startswith("sqlite"):  # the API says "try later", never a 500
            refused = door.create()
            assert refused.status_code == 503 and refused.headers["retry-after"]
            assert refused.headers["content-type"].startswith("application/problem+json")
    finally:
        if moved.exists():
            moved.rename(tmp_path)


def test_a_mailbox_without_a_good_pass_for_too_long_is_unhealthy(engine: Engine) -> None:
    box = {"name": "inbox", "host": "127.0.0.1", "username": "u", "password": "p",
           "security": "none", "poll_seconds": 10, "timeout_seconds": 5}
    config = door_config(engine.url.render_as_string(hide_password=False), mailbox=[box])
    probe = probe_engine(engine)
    health = Health()
    now = datetime.now(UTC)
    health.polled("inbox", now - timedelta(seconds=60))
    ok, report = check(probe, config, health, now)
    assert ok and report["mailboxes"][0]["last_good_poll"]
    health.failed("inbox", "connection refused")
    ok, report = check(probe, config, health, now + timedelta(seconds=120))  # > 3 polls + 60 s
    assert not ok and report["status"] == "unhealthy"
    assert report["mailboxes"][0] | {"last_good_poll": None} == {
        "name": "inbox", "ok": False, "last_good_poll": None, "outage": "connection refused",
        "lease_holder": None, "lease_renewed_at": None}
    ok, _ = check(probe, config, Health(started=now), now + timedelta(seconds=30))
    assert ok  # nobody holds it yet, but the service just started
    ok, _ = check(probe, config, Health(started=now), now + timedelta(seconds=300))
    assert not ok  # and nobody ever did


def _wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _service_config(path: Path, engine: Engine, dovecot: Dovecot, folder: str, port: int) -> Path:
    box = mailbox_table(dovecot, folder, poll_seconds=1, timeout_seconds=5, source="portal")
    lines = ["[http]", f'listen = "127.0.0.1:{port}"', "[database]",
             f'url = "{engine.url.render_as_string(hide_password=False)}"',
             "[[channel]]", 'name = "support"', 'address = "support@example.com"',
             "[[mailbox]]", *(f"{k} = {_toml(v)}" for k, v in box.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gateway.cli", "--config", str(config), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_run_serves_the_api_beside_the_mailboxes_and_sigterm_stops_both(
        engine: Engine, dovecot: Dovecot, folder: str, tmp_path: Path) -> None:
    port = free_port()
    config = _service_config(tmp_path / "config.toml", engine, dovecot, folder, port)
    created = _cli(config, "tokens", "create", "portal", "--scope", "tickets:write",
                   "--scope", "tickets:read")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                       headers={"Authorization": f"Bearer {token}"})
    dovecot.append(mail(1, "Formular: Drucker", "anna@acme.example"), folder=folder)
    proc = start_service(config, log=tmp_path / "service.log")
    try:
        def polled() -> bool:
            try:
                answer = api.get("/healthz")
            except httpx.TransportError:
                return False
            box = answer.json()["mailboxes"][0]
            return answer.status_code == 200 and bool(box["last_good_poll"] and box["lease_holder"])

        _wait_for(polled, 60, "a healthy service with a good pass over its mailbox")
        listed = api.get("/api/v1/tickets", params={"customer": "anna@acme.example"}).json()
        assert [t["source"] for t in listed["items"]] == ["portal"]  # [[mailbox]] source
        posted = api.post("/api/v1/tickets", json={"customer": {"email": "bert@acme.example"},
                                                   "subject": "Per API", "source": "phone"})
        assert posted.status_code == 201, posted.text
        assert 'source="phone"' in api.get("/metrics").text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, (tmp_path / "service.log").read_text()[-3000:]
    with pytest.raises(httpx.TransportError):
        api.get("/healthz")


def test_run_once_never_serves_http(engine: Engine, dovecot: Dovecot, folder: str,
                                    tmp_path: Path) -> None:
    with socket.socket() as taken:  # the port is busy: serving would fail
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = _service_config(tmp_path / "config.toml", engine, dovecot, folder,
                                 taken.getsockname()[1])
        dovecot.append(mail(2), folder=folder)
        done = _cli(config, "run", "--once")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "HTTP API" not in done.stderr and "created 1" in done.stdout


def test_run_reports_a_busy_http_port_and_exits_1(engine: Engine, dovecot: Dovecot, folder: str,
                                                  tmp_path: Path, smtp: SmtpServer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = _service_config(tmp_path / "config.toml", engine, dovecot, folder,
                                 taken.getsockname()[1])
        proc = start_service(config, log=tmp_path / "service.log")
        code = proc.wait(timeout=60)
    log = (tmp_path / "service.log").read_text()
    assert code == 1, log[-3000:]
    assert "could not serve" in log and "Traceback" not in log
