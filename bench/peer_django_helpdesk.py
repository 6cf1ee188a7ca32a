"""The peer we compare against: django-helpdesk 2.6.1 `manage.py get_email` on a Dovecot mailbox."""

from __future__ import annotations

import argparse
import contextlib
import imaplib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers.dovecot import Dovecot

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench"
VENV = WORK / "dh-venv"
PROJECT = WORK / "dh-project"
VERSION = "2.6.1"
PYTHON = VENV / "bin" / "python"

SETTINGS = '''\
"""Minimal Django settings for benchmarking django-helpdesk's get_email (generated)."""
import os

SECRET_KEY = "bench-only"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sites",
    "helpdesk",
]
SITE_ID = 1
HELPDESK_TEAMS_MODE_ENABLED = False
ROOT_URLCONF = "dhbench.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["DH_DB"],
                         "OPTIONS": {"timeout": 60}}}
MEDIA_ROOT = os.environ.get("DH_MEDIA", "/tmp/dh-media")
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
# Its acknowledgements are rendered, then dropped (ticketgate's only reach its outbox here).
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
              "OPTIONS": {"context_processors": []}}]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
'''
URLS = '''\
from django.urls import include, path

urlpatterns = [path("helpdesk/", include("helpdesk.urls", namespace="helpdesk"))]
'''
MANAGE = '''\
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dhbench.settings")
from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
'''
MAKE_QUEUE = '''\
import json, sys
import django
django.setup()
from helpdesk.models import Queue
cfg = json.loads(sys.argv[1])
Queue.objects.all().delete()
Queue.objects.create(title="Support", slug="support", allow_email_submission=True,
                     email_box_type="imap", email_box_host=cfg["host"], email_box_port=cfg["port"],
                     email_box_user=cfg["user"], email_box_pass=cfg["password"], email_box_ssl=False,
                     email_box_imap_folder=cfg["folder"], email_box_interval=0,
                     logging_type="info")
'''
COUNT = '''\
import json
import django
django.setup()
from helpdesk.models import FollowUp, Ticket
print(json.dumps({"tickets": Ticket.objects.count(), "followups": FollowUp.objects.count(),
                  "message_ids": list(FollowUp.objects.values_list("message_id", flat=True))}))
'''


class PeerUnavailable(RuntimeError):
    """django-helpdesk could not be installed or set up here; the message says why."""


@dataclass
class PeerResult:
    """What one get_email run (or several at once) did and cost."""

    offered: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    tickets: int
    followups: int
    left_on_server: int
    returncodes: list[int]
    message_ids: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # mails that aborted a run, set aside
    rounds: int = 1
    startup_s: float = 0.0  # wall time of one get_email run on an empty mailbox
    log_tail: str = ""
    log_errors: int = 0

    @property
    def ingested(self) -> int:
        """Mails taken off the server by get_email itself (not the ones set aside)."""
        return self.offered - self.left_on_server - len(self.blocked)

    @property
    def rate(self) -> float:
        """Mails ingested per second of wall time, every run and restart included."""
        return self.ingested / self.wall_s if self.wall_s else 0.0

    @property
    def rate_without_restarts(self) -> float:
        """Mails per second with the startup cost of the extra runs after aborts taken out."""
        busy = self.wall_s - (self.rounds - 1) * self.startup_s
        return self.ingested / busy if busy > 0 else 0.0


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 900) -> str:
    """Run a setup command; raise PeerUnavailable with the output tail on failure."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise PeerUnavailable(f"{' '.join(cmd[:4])} failed ({proc.returncode}):\n{tail}")
    return proc.stdout


def ensure_installed() -> None:
    """Create the venv and pip install django-helpdesk==2.6.1 when it is missing."""
    if PYTHON.exists():
        probe = subprocess.run([str(PYTHON), "-c", "import helpdesk, django"], capture_output=True,
                               check=False)
        if probe.returncode == 0:
            return
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"peer: installing django-helpdesk=={VERSION} into {VENV} ...", file=sys.stderr)
    _run([sys.executable, "-m", "venv", "--clear", str(VENV)])
    _run([str(VENV / "bin" / "pip"), "install", "--disable-pip-version-check", "-q",
          f"django-helpdesk=={VERSION}"])


def _env(db: Path, media: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.update(DJANGO_SETTINGS_MODULE="dhbench.settings", DH_DB=str(db),
               DH_MEDIA=str(media or db.parent / "media"), PYTHONPATH=str(PROJECT))
    return env


def ensure_project() -> Path:
    """Write the Django project and migrate a template database once; return its path."""
    ensure_installed()
    (PROJECT / "dhbench").mkdir(parents=True, exist_ok=True)
    files = {PROJECT / "dhbench" / "__init__.py": "", PROJECT / "dhbench" / "settings.py": SETTINGS,
             PROJECT / "dhbench" / "urls.py": URLS, PROJECT / "manage.py": MANAGE}
    changed = False
    for path, text in files.items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed = True
    template = PROJECT / "template.sqlite3"
    if changed or not template.exists():
        template.unlink(missing_ok=True)
        _run([str(PYTHON), str(PROJECT / "manage.py"), "migrate", "-v", "0"], env=_env(template))
    return template


def clear_folder(dovecot: Dovecot, user: str, folder: str = "INBOX") -> None:
    """Expunge every mail in a folder."""
    conn = imaplib.IMAP4(dovecot.host, dovecot.port, timeout=60)
    try:
        conn.login(user, dovecot.password)
        typ, data = conn.select(folder)
        if typ == "OK" and int(data[0] or b"0") > 0:
            conn.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
            conn.expunge()
    finally:
        with contextlib.suppress(Exception):
            conn.logout()


def prepare(dovecot: Dovecot, user: str, folder: str, run_dir: Path) -> dict[str, str]:
    """A fresh database (copied from the migrated template) with a Queue on user/folder."""
    template = ensure_project()
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    db = run_dir / "helpdesk.sqlite3"
    shutil.copyfile(template, db)
    env = _env(db, run_dir / "media")
    cfg = {"host": dovecot.host, "port": dovecot.port, "user": user, "password": dovecot.password,
           "folder": folder}
    _run([str(PYTHON), "-c", MAKE_QUEUE, json.dumps(cfg)], env=env)
    return env


def counts(env: dict[str, str]) -> dict[str, object]:
    """Tickets, follow-ups and the follow-ups' Message-IDs in the peer's database."""
    result: dict[str, object] = json.loads(_run([str(PYTHON), "-c", COUNT], env=env))
    return result


def get_email(env: dict[str, str], instances: int, log: Path, timeout: float = 3600
              ) -> tuple[float, float, float, list[int]]:
    """Run `manage.py get_email` instances times at once: wall s, CPU s (sum), peak RSS MB (max)."""
    from bench._harness import Measured

    cmd = [str(PYTHON), str(PROJECT / "manage.py"), "get_email"]
    started = time.perf_counter()
    runs = [Measured(cmd, log, env=env) for _ in range(instances)]
    usages = [run.wait(timeout) for run in runs]
    return (time.perf_counter() - started, sum(u.cpu_s for u in usages),
            max(u.peak_rss_mb for u in usages), [u.returncode for u in usages])


_PROCESSING = re.compile(r"Processing message b?'?(\d+)")


def set_aside(dovecot: Dovecot, user: str, folder: str, seq: int) -> str:
    """What an admin does when one mail aborts every run: delete it (and expunge); its Message-ID."""
    conn = imaplib.IMAP4(dovecot.host, dovecot.port, timeout=60)
    try:
        conn.login(user, dovecot.password)
        conn.select(folder)
        typ, data = conn.fetch(str(seq), "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        header = data[0][1] if typ == "OK" and data and isinstance(data[0], tuple) else b""
        conn.store(str(seq), "+FLAGS.SILENT", r"(\Deleted)")
        conn.expunge()
    finally:
        with contextlib.suppress(Exception):
            conn.logout()
    return header.decode("ascii", "replace").partition(":")[2].strip()


def run_peer(dovecot: Dovecot, user: str, mails: list[bytes], folder: str = "INBOX",
             instances: int = 1, name: str = "peer", reload: bool = True,
             rescue: bool = True, max_rounds: int = 400) -> PeerResult:
    """Load mails into user/folder (after emptying it), run get_email, and measure.

    django-helpdesk deletes what it ingests, so the mailbox is reloaded on every call. One
    mail it cannot take aborts the whole run (and blocks every later run); with rescue, the
    mail is set aside as an admin would and get_email runs again: every round is measured.
    Raises PeerUnavailable when django-helpdesk cannot be installed or set up.
    """
    run_dir = WORK / "dh-runs" / name
    env = prepare(dovecot, user, folder, run_dir)
    if reload:
        clear_folder(dovecot, user, folder)
        dovecot.seed(mails, user=user, folder=folder)
    wall = cpu = rss = 0.0
    codes: list[int] = []
    blocked: list[str] = []
    text = ""
    rounds = 0
    while True:
        log = run_dir / f"get_email-{rounds}.log"
        w, c, r, rc = get_email(env, instances, log)
        rounds += 1
        wall, cpu, rss = wall + w, cpu + c, max(rss, r)
        codes += rc
        text = log.read_text(errors="replace")
        if not rescue or instances > 1 or "Queue processing failed" not in text:
            break
        numbers = _PROCESSING.findall(text)
        if not numbers or rounds >= max_rounds:
            break
        blocked.append(set_aside(dovecot, user, folder, int(numbers[-1])))
    startup = 0.0
    if rounds > 1:  # what each extra run costs before it reads mail: a run on the empty box
        startup, _, _, _ = get_email(env, 1, run_dir / "get_email-empty.log")
    found = counts(env)
    ids = [str(i) for i in found["message_ids"] if i]  # type: ignore[attr-defined]
    lines = text.splitlines()
    return PeerResult(offered=len(mails), wall_s=wall, cpu_s=cpu, peak_rss_mb=rss,
                      tickets=int(found["tickets"]),  # type: ignore[call-overload]
                      followups=int(found["followups"]),  # type: ignore[call-overload]
                      left_on_server=dovecot.count(user=user, folder=folder), returncodes=codes,
                      message_ids=ids, blocked=blocked, rounds=rounds, startup_s=startup,
                      log_tail="\n".join(lines[-15:]),
                      log_errors=sum(1 for line in lines if "Traceback" in line))


def main() -> None:
    """Run the peer once on a generated mailbox and print what it did."""
    from bench.corpus import generate

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--mails", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--instances", type=int, default=1)
    args = parser.parse_args()
    base = WORK / "dovecot-peer"
    dovecot = Dovecot.start(base, users=("dh",))
    try:
        result = run_peer(dovecot, "dh", generate(args.mails, args.seed), instances=args.instances)
    except PeerUnavailable as exc:
        print(f"django-helpdesk unavailable: {exc}", file=sys.stderr)
        sys.exit(2)
    finally:
        dovecot.kill()
    doubled = sum(c - 1 for c in Counter(result.message_ids).values() if c > 1)
    print(f"django-helpdesk {VERSION}: {result.ingested}/{result.offered} mails ingested in "
          f"{result.wall_s:.1f} s ({result.rate:.1f} mails/s; "
          f"{result.rate_without_restarts:.1f} without the restarts), CPU {result.cpu_s:.1f} s, "
          f"peak RSS {result.peak_rss_mb:.0f} MB, {result.tickets} tickets, {result.followups} "
          f"follow-ups, {doubled} doubled; {len(result.blocked)} mails aborted a run and were set "
          f"aside ({result.rounds} runs, {result.startup_s:.1f} s each on an empty mailbox)")


if __name__ == "__main__":
    main()
