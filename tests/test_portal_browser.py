"""The customer portal in a real headless Chromium (Debian's), against `ticketgate run`.

One story, as customers live it: Anna asks for a sign-in link, reads it from her mail (the
SMTP sink), signs in, opens a ticket with a file and sees it in her list in orange; Alice, the
agent, answers by mail through Dovecot; Anna sees the answer (red: reply expected) and closes
the ticket (green). Bert, her colleague, sees it only once the organisation shares its tickets;
Carl of another company gets 404. A used or expired link and a form without its CSRF token are
refused. Screenshots of the list, ticket and new-ticket pages are taken on the way
(TICKETGATE_SCREENSHOTS=DIR keeps them; docs/ holds the committed ones).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.statuses import COLOURS
from store.db import make_engine, migrate, transaction
from store.models import PortalLink, Ticket
from tests.conftest import ROOT, mail, start_service, stop_service, write_config
from tests.portalkit import link_in
from tests.servers.browser import chromium
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import Delivered, SmtpServer, free_port
from tests.test_agents import agent_mail

pytestmark = pytest.mark.slow  # a service, Dovecot and three browsers: about a minute
ANNA, BERT, CARL = "anna@acme.example", "bert@acme.example", "carl@other.example"
T = TypeVar("T")


@dataclass
class Story:
    """The running service and what the test reads from it."""

    engine: Engine
    config: Path
    url: str
    smtp: SmtpServer
    dovecot: Dovecot
    folder: str
    shots: Path


def until(check: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Wait for an outcome the service produces on its own schedule (mail, poll, flush)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def story(tmp_path: Path, dovecot: Dovecot, folder: str, smtp: SmtpServer) -> Iterator[Story]:
    """`ticketgate run` with the portal, Dovecot intake and the SMTP sink; three customers known."""
    engine = make_engine(f"sqlite:///{tmp_path / 'ticketgate.db'}")
    migrate(engine)
    port = free_port()
    extra = f"""secret = "portal-story-secret"
own_domains = ["example.com"]
[rules]
folder = "{ROOT / 'rules'}"
[[agent]]
address = "alice@example.com"
name = "alice"
display_name = "Alice"
[smtp]
host = "{smtp.host}"
port = {smtp.port}
security = "none"
[outbound]
flush_seconds = 0.5
[http]
listen = "127.0.0.1:{port}"
[portal]
url = "http://127.0.0.1:{port}/portal"
categories = ["Hardware", "Software", "Network"]
"""
    config = write_config(tmp_path / "config.toml", engine, dovecot, folder, extra)
    for n, (who, subject) in enumerate(((ANNA, "Printer offline"), (BERT, "New laptop for Bert"),
                                        (CARL, "Invoice question")), 1):
        dovecot.append(mail(f"{folder}-{n}", subject, who), folder=folder)
    proc = start_service(config, log=tmp_path / "service.log")
    try:
        base = f"http://127.0.0.1:{port}"
        until(lambda: _answers(f"{base}/portal/signin"), "the portal to answer")
        until(lambda: _tickets(engine) >= 3, "the customers' first mails to become tickets")
        yield Story(engine, config, base, smtp, dovecot, folder, tmp_path)
    finally:
        stopped = stop_service(proc)
        engine.dispose()
        assert stopped.code == 0, (tmp_path / "service.log").read_text("utf-8")[-3000:]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _tickets(engine: Engine) -> int:
    with transaction(engine) as session:
        return len(session.exec(select(Ticket)).all())


def shot(browser: WebDriver, story: Story, name: str) -> None:
    """A screenshot of the page into the test's folder (and TICKETGATE_SCREENSHOTS, if set)."""
    path = story.shots / f"{name}.png"
    assert browser.save_screenshot(str(path))
    keep = os.environ.get("TICKETGATE_SCREENSHOTS")
    if keep:
        shutil.copy(path, Path(keep) / path.name)


def sign_in(browser: WebDriver, story: Story, address: str) -> str:
    """Ask for a link in the browser, read it from the mail, open it and press the button."""
    before = len(story.smtp.handler.to(address))
    browser.get(f"{story.url}/portal/tickets")
    assert "/portal/signin?next=" in browser.current_url  # no session: sign-in first
    browser.find_element(By.ID, "email").send_keys(address)
    press(browser, "form.card button")
    assert browser.find_element(By.ID, "sent").is_displayed()
    link = link_in(story.smtp, address, before, timeout=15)
    browser.get(link)
    press(browser, "#confirm")
    assert browser.current_url == f"{story.url}/portal/tickets"
    return link


def press(browser: WebDriver, css: str) -> None:
    """Click a button or link that loads a new page, and wait until the new page is there."""
    old = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.CSS_SELECTOR, css).click()
    WebDriverWait(browser, 30).until(staleness_of(old))


def colour_of(browser: WebDriver, css: str) -> str:
    """The badge's traffic-light colour as rendered (its computed background)."""
    shown = browser.find_element(By.CSS_SELECTOR, css).value_of_css_property("background-color")
    for name, hexa in COLOURS.items():
        red, green, blue = (int(hexa[i:i + 2], 16) for i in (1, 3, 5))
        if shown in (f"rgba({red}, {green}, {blue}, 1)", f"rgb({red}, {green}, {blue})"):
            return name
    raise AssertionError(f"{css}: {shown} is none of the traffic-light colours")


def open_portal_ticket(browser: WebDriver, story: Story) -> str:
    """Fill in the new-ticket form with a file; the new ticket's number."""
    press(browser, "nav a[href$='/tickets/new']")
    browser.find_element(By.ID, "subject").send_keys("Scanner jams on every page")
    browser.find_element(By.CSS_SELECTOR, "#category option[value='Hardware']").click()
    browser.find_element(By.ID, "asset").send_keys("SCAN-4711")
    browser.find_element(By.ID, "text").send_keys("Since this morning every page jams.\nLog attached.")
    log = story.shots / "scanner.log"
    log.write_text("E42 paper jam at tray 2\n", "utf-8")
    browser.find_element(By.ID, "attachments").send_keys(str(log))
    shot(browser, story, "portal-new-ticket")
    press(browser, "#new button")
    assert "/portal/tickets/" in browser.current_url
    number = browser.current_url.rsplit("/", 1)[1]
    assert browser.find_element(By.ID, "asset").text == "SCAN-4711"
    assert browser.find_element(By.LINK_TEXT, "scanner.log").is_displayed()
    return number


def agent_answers(story: Story, number: str, text: str) -> None:
    """Alice answers the notification she got, by mail into the support mailbox (Dovecot)."""
    def notification() -> Delivered | None:
        return next((d for d in story.smtp.handler.to("alice@example.com")
                     if number in str(d.message["Subject"])), None)

    note = until(notification, f"Alice's notification of {number}").message
    answer = agent_mail(f"{story.folder}-answer", note["Reply-To"], text,
                        subject=f"Re: {note['Subject']}", headers=f"In-Reply-To: {note['Message-ID']}\r\n")
    story.dovecot.append(answer, folder=story.folder)


def reloaded_until(browser: WebDriver, text: str, what: str) -> None:
    """Reload the page until text shows up (the service polls the mailbox on its own)."""
    def shown() -> bool:
        browser.refresh()
        return text in browser.page_source
    until(shown, what)


def test_customer_portal_story_in_chromium(story: Story) -> None:
    with chromium(story.shots / "anna") as anna:
        link = sign_in(anna, story, ANNA)
        assert "Printer offline" in anna.page_source
        number = open_portal_ticket(anna, story)
        shot(anna, story, "portal-ticket-new")
        press(anna, "nav a[href$='/tickets']")
        assert colour_of(anna, f"[id='ticket-{number}'] .badge") == "orange"  # In progress
        agent_answers(story, number, "Hello Anna,\n\nplease open tray 2 and remove the torn sheet.\n\nAlice")
        anna.get(f"{story.url}/portal/tickets/{number}")
        reloaded_until(anna, "remove the torn sheet", "the agent's answer in the portal")
        assert colour_of(anna, "#status .badge") == "red"  # Reply expected
        shot(anna, story, "portal-ticket")
        anna.get(f"{story.url}/portal/tickets")
        shot(anna, story, "portal-list")
        refuse_a_form_without_csrf(anna, story, number)
        anna.get(f"{story.url}/portal/tickets/{number}")
        press(anna, "#close button")
        assert anna.find_element(By.ID, "closed").is_displayed()
        assert colour_of(anna, "#status .badge") == "green"  # Closed
    with chromium(story.shots / "thief") as thief:
        thief.get(link)  # the used link, in another browser
        assert thief.find_element(By.ID, "link-invalid").is_displayed()
    colleague_sees_it_only_when_shared(story, number)
    another_customer_gets_404_and_an_expired_link_is_refused(story, number)


def refuse_a_form_without_csrf(browser: WebDriver, story: Story, number: str) -> None:
    """The reply form with its token taken out is refused, and nothing is added."""
    browser.get(f"{story.url}/portal/tickets/{number}")
    browser.execute_script("document.querySelector('#reply input[name=csrf]').remove()")
    browser.find_element(By.ID, "text").send_keys("this must not arrive")
    press(browser, "#reply button")
    assert "This form has expired" in browser.find_element(By.ID, "error").text
    browser.get(f"{story.url}/portal/tickets/{number}")
    assert "this must not arrive" not in browser.page_source


def colleague_sees_it_only_when_shared(story: Story, number: str) -> None:
    """Bert sees Anna's ticket after `ticketgate organisations set acme.example --share-tickets`."""
    with chromium(story.shots / "bert") as bert:
        sign_in(bert, story, BERT)
        assert "New laptop for Bert" in bert.page_source and number not in bert.page_source
        bert.get(f"{story.url}/portal/tickets/{number}")
        assert "not yours" in bert.find_element(By.ID, "error").text
        cli = subprocess.run([sys.executable, "-m", "gateway.cli", "--config", str(story.config),
                              "organisations", "set", "acme.example", "--share-tickets"],
                             cwd=ROOT, capture_output=True, text=True, check=False,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert cli.returncode == 0, cli.stderr
        bert.refresh()
        assert "Scanner jams on every page" in bert.page_source
        assert colour_of(bert, "#status .badge") == "green"
        assert bert.find_elements(By.ID, "close") == []  # only Anna (or those copied) may close
        bert.get(f"{story.url}/portal/tickets")
        assert f"ticket-{number}" in bert.page_source


def another_customer_gets_404_and_an_expired_link_is_refused(story: Story, number: str) -> None:
    """Carl (other.example) gets 404 on the URL; his expired link is refused."""
    with chromium(story.shots / "carl") as carl:
        sign_in(carl, story, CARL)
        carl.get(f"{story.url}/portal/tickets/{number}")
        assert "not yours" in carl.find_element(By.ID, "error").text
        assert httpx.get(f"{story.url}/portal/tickets/{number}").status_code == 303  # no session
        press(carl, "form.signout button")
        before = len(story.smtp.handler.to(CARL))
        carl.find_element(By.ID, "email").send_keys(CARL)
        press(carl, "form.card button")
        link = link_in(story.smtp, CARL, before, timeout=15)
        with transaction(story.engine) as session:
            for row in session.exec(select(PortalLink).where(PortalLink.address == CARL)).all():
                row.expires_at = row.created_at  # as if its minutes had passed
                session.add(row)
        carl.get(link)
        assert carl.find_element(By.ID, "link-invalid").is_displayed()
