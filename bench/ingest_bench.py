"""Ingest throughput on one generated mailbox: ticketgate vs the parse-only floor vs django-helpdesk."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import email
import email.policy
import json
import pstats
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import TICKETGATE, WORK, Usage, measure, write_config
from bench._report import write_section
from bench.corpus import generate_mails, summary
from bench.peer_django_helpdesk import VERSION, PeerResult, PeerUnavailable, run_peer
from tests.servers.dovecot import Dovecot

BASE = WORK / "ingest"
FLOOR_BATCH = 100


@dataclass
class Row:
    """One contender's figures."""

    name: str
    mails: int
    usage: Usage
    note: str = ""

    @property
    def rate(self) -> float:
        """Mails per second of wall time."""
        return self.mails / self.usage.wall_s

    @property
    def cpu_ms(self) -> float:
        """CPU milliseconds per mail."""
        return 1000 * self.usage.cpu_s / self.mails


# -- the floor: fetch and parse only, run as a child so its RSS is its own ---------------------

async def _floor(host: str, port: int, user: str, password: str) -> dict[str, int]:
    """UID FETCH every mail (BODY.PEEK[], batches of 100) and parse it with compat32."""
    import aioimaplib

    client = aioimaplib.IMAP4(host=host, port=port, timeout=60)
    await client.wait_hello_from_server()
    await client.login(user, password)
    await client.select("INBOX")
    response = await client.uid_search("ALL", charset=None)
    uids = sorted(int(t) for line in response.lines[:-1] for t in bytes(line).split() if t.isdigit())
    parsed = size = 0
    for start in range(0, len(uids), FLOOR_BATCH):
        batch = uids[start:start + FLOOR_BATCH]
        response = await asyncio.wait_for(
            client.uid("fetch", f"{batch[0]}:{batch[-1]}", "(UID BODY.PEEK[])"), 120)
        for line in response.lines:
            if isinstance(line, bytearray):  # aioimaplib hands literals over as bytearray
                message = email.message_from_bytes(bytes(line), policy=email.policy.compat32)
                parsed += message.get("message-id") is not None
                size += len(line)
    await client.logout()
    return {"parsed": parsed, "bytes": size}


def floor_child(spec: str) -> None:
    """Entry point of the child process: print what the floor fetched and parsed, as JSON."""
    cfg = json.loads(spec)
    print(json.dumps(asyncio.run(_floor(cfg["host"], cfg["port"], cfg["user"], cfg["password"]))))


# -- the profile of ticketgate's own ingest, in-process ------------------------------------------

def profile_ingest(config_path: Path, count: int) -> tuple[pstats.Stats, Counter[str], int]:
    """Fetch count mails over IMAP (as the service does) and run them through process() under cProfile."""
    from gateway.config import load_config
    from gateway.intake.imap import ImapMailbox
    from gateway.intake.parse import ParsedMail
    from gateway.intake.parsepool import MAX_AHEAD_BYTES, parse_in_worker
    from gateway.pipeline import RawMail, process
    from gateway.rules.loader import RuleBook, vocabulary
    from store.db import make_engine, migrate

    config = load_config(config_path)
    engine = make_engine(config.database_url)
    migrate(engine)
    rules = RuleBook(config.rules_folder, vocabulary(config)).current()
    box_config = config.mailboxes[0]

    async def fetch_all() -> tuple[int, list[tuple[int, bytes]]]:
        box = ImapMailbox(box_config)
        await box.connect()
        uids = (await box.search(None))[:count]
        fetched: list[tuple[int, bytes]] = []
        for start in range(0, len(uids), box_config.batch_size):
            fetched += await box.fetch(uids[start:start + box_config.batch_size])
        await box.close()
        return box.uidvalidity, fetched

    def fetch_phase() -> tuple[int, list[tuple[int, bytes]]]:
        return asyncio.run(fetch_all())

    def worker_phase(fetched: list[tuple[int, bytes]]) -> list[ParsedMail | None]:
        """What the service's parse worker does (parse and pack); larger mails go in place."""
        return [parse_in_worker(data, config.html_sanitizer) if len(data) <= MAX_AHEAD_BYTES
                else None for _, data in fetched]

    def process_phase(uidvalidity: int, fetched: list[tuple[int, bytes]],
                      parsed: list[ParsedMail | None]) -> Counter[str]:
        outcomes: Counter[str] = Counter()
        for (uid, data), ahead in zip(fetched, parsed, strict=True):
            raw = RawMail(data, box_config.name, uidvalidity, uid, box_config.channel, "email")
            outcomes[process(engine, config, raw, rules=rules, parsed=ahead).outcome] += 1
        return outcomes

    profiler = cProfile.Profile()
    uidvalidity, fetched = profiler.runcall(fetch_phase)
    parsed = profiler.runcall(worker_phase, fetched)
    outcomes = profiler.runcall(process_phase, uidvalidity, fetched, parsed)
    engine.dispose()
    return pstats.Stats(profiler), outcomes, len(fetched)


def _ct(stats: pstats.Stats, path: str, func: str) -> float | None:
    """Cumulative seconds of a function (the outermost, when several share the name)."""
    found = [v[3] for k, v in stats.stats.items()  # type: ignore[attr-defined]
             if k[0].replace("\\", "/").endswith(path) and k[2] == func]
    return max(found) if found else None


def stage_table(stats: pstats.Stats, mails: int) -> tuple[str, dict[str, float]]:
    """Where the profiled ingest spends its time, by pipeline stage."""
    def ct(path: str, *funcs: str) -> float:
        return sum(_ct(stats, path, f) or 0.0 for f in funcs)

    nh3 = sum(v[3] for k, v in stats.stats.items()  # type: ignore[attr-defined]
              if k[0] == "~" and "nh3" in k[2] and "clean" in k[2])

    fetch = ct("bench/ingest_bench.py", "fetch_phase")
    worker = ct("bench/ingest_bench.py", "worker_phase")
    total_process = ct("bench/ingest_bench.py", "process_phase")
    packing = ct("store/packing.py", "pack", "pack_to_file")
    parse = ct("gateway/intake/parse.py", "parse_mail")
    stdlib = ct("email/__init__.py", "message_from_bytes")
    spool = ct("gateway/intake/spool.py", "cut_large_parts") + ct("gateway/intake/spool.py", "claim")
    sanitize = ct("gateway/intake/htmltext.py", "sanitize_html", "sanitize_html_bleach")
    bleach = ct("bleach/sanitizer.py", "clean")
    html_text = ct("gateway/intake/htmltext.py", "html_to_text")
    guard = ct("gateway/intake/guard.py", "inspect")
    store = ct("gateway/pipeline.py", "_store")
    thread = ct("gateway/thread/followup.py", "find_thread")
    rules = ct("gateway/rules/stage.py", "message_facts", "store_facts", "decide", "apply")
    notify = ct("gateway/outbound/notify.py", "after_inbound", "record_bounce")
    commit = _ct(stats, "sqlalchemy/orm/session.py", "commit") or 0.0
    content_hash = ct("gateway/intake/parse.py", "content_hash")
    ledger = ct("store/queries.py", "ledger_has") + ct("gateway/record.py", "write_ledger")
    ticket_for = ct("gateway/thread/landing.py", "land")
    watchers = ct("gateway/record.py", "add_copied_watchers")
    quarantine = ct("gateway/pipeline.py", "quarantine")
    waiting = sum(v[2] for k, v in stats.stats.items()  # type: ignore[attr-defined]
                  if k[0] == "~" and "acquire" in k[2])
    total = fetch + worker + total_process
    rows = [
        ("IMAP fetch (aioimaplib UID FETCH, batches of 100)", fetch),
        ("pack originals: digest + zlib (the parse worker; a thread beside a large mail)", packing),
        ("parse: stdlib feed parser (`email.message_from_bytes`, compat32)", stdlib),
        ("parse: large base64 bodies cut out and decoded (`gateway/intake/spool.py`)", spool),
        ("parse: our decoding (`gateway/intake/parse.py` walk, headers, charsets, attachments)",
         parse - stdlib - spool - sanitize - html_text),
        ("sanitise: `gateway.intake.htmltext.sanitize_html*`", sanitize),
        ("  of which `nh3.clean` (Rust)", nh3),
        ("  of which bleach `Cleaner.clean`", bleach),
        ("parse: `html_to_text` (HTML-only mail)", html_text),
        ("guard (`gateway.intake.guard.inspect`)", guard),
        ("thread (`gateway.thread.followup.find_thread`, with its queries)", thread),
        ("rules (`message_facts`, `store_facts`, `decide`, `apply`)", rules),
        ("notify: outbox rows (`notify.after_inbound`, `record_bounce`)", notify),
        ("store: ledger (`queries.ledger_has` incl. BEGIN IMMEDIATE, `record.write_ledger`)",
         ledger),
        ("store: ticket, contact, counter (`thread.landing.land`)", ticket_for),
        ("store: watchers (`record.add_copied_watchers`, email-validator)", watchers),
        ("store: commit (SQLAlchemy `commit`: flush + COMMIT)", commit),
        ("store: waiting for a large original's packing thread", waiting),
        ("store: rest of `_store` (Message-ID dedupe, message/attachment/blob inserts, "
         "`content_hash`)",
         store - thread - rules - notify - commit - ledger - ticket_for - watchers - waiting),
        ("quarantine (`pipeline.quarantine`)", quarantine),
        ("other (`process` and the worker's share outside the stages above)",
         worker + total_process - parse - guard - store - quarantine - packing),
    ]
    lines = ["| stage | seconds (cProfile) | share | ms per mail |", "|---|---|---|---|"]
    for label, seconds in rows:
        if label.startswith("  of which") and not seconds:
            continue  # the sanitiser not in use
        share = f"{seconds / total:.1%}" if total else "-"
        lines.append(f"| {label} | {seconds:.2f} | {share} | {1000 * seconds / mails:.1f} |")
    lines.append(f"| **total** | {total:.2f} | 100% | {1000 * total / mails:.1f} |")
    shares = {"fetch": fetch, "parse": parse - sanitize, "sanitize": sanitize, "bleach": bleach,
              "stdlib": stdlib, "store": store, "commit": commit, "content_hash": content_hash,
              "total": total}
    return "\n".join(lines), shares


def top_functions(stats: pstats.Stats, count: int = 12) -> str:
    """The functions with the most self time."""
    items = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    lines = ["| function (self time) | seconds | calls |", "|---|---|---|"]
    for (path, line, func), (_cc, calls, self_time, _ct2, _callers) in items[:count]:
        short = "/".join(Path(path).parts[-2:]) if path != "~" else "builtin"
        lines.append(f"| `{short}:{line} {func}` | {self_time:.2f} | {calls} |")
    return "\n".join(lines)


# -- the run -------------------------------------------------------------------------------------

def main() -> None:
    """Seed one Dovecot user per contender, ingest, profile, print, record in bench/README.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--mails", type=int, default=2000, help="mails in the mailbox")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--profile-mails", type=int, default=600,
                        help="mails of the same mailbox ingested again under cProfile")
    parser.add_argument("--no-peer", action="store_true", help="skip django-helpdesk")
    parser.add_argument("--bleach", action="store_true",
                        help='also run ticketgate with [html] sanitizer = "bleach" (adds minutes)')
    parser.add_argument("--floor-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_child:
        floor_child(args.floor_child)
        return
    command = ("python bench/ingest_bench.py" + (f" -n {args.mails}" if args.mails != 2000 else "")
               + (" --bleach" if args.bleach else "") + (" --no-peer" if args.no_peer else ""))
    generated = generate_mails(args.mails, args.seed)
    mails = [m.raw for m in generated]
    print(summary(generated), flush=True)
    shutil.rmtree(BASE, ignore_errors=True)
    BASE.mkdir(parents=True)
    ours: list[tuple[str, str | None, str]] = [("tg", None, "ticketgate `run --once`")]
    if args.bleach:
        ours.append(("tgb", "bleach", 'ticketgate `run --once`, `[html] sanitizer = "bleach"`'))
    users = [user for user, _, _ in ours]
    dovecot = Dovecot.start(BASE / "dovecot", users=(*users, "floor", "dh"))
    try:
        started = time.perf_counter()
        for user in (*users, "floor"):
            dovecot.seed(mails, user=user)
        print(f"seeded {len(users) + 1} × {len(mails)} mails in {time.perf_counter() - started:.0f} s",
              flush=True)
        rows, notes = [], []
        for user, sanitizer, label in ours:
            config = write_config(BASE / f"{user}.toml", BASE / f"{user}.db", dovecot, user, rules=True,
                                  sanitizer=sanitizer)
            usage = measure([str(TICKETGATE), "--config", str(config), "run", "--once"],
                            BASE / f"{user}.log", stdout=BASE / f"{user}.out")
            out = (BASE / f"{user}.out").read_text().strip().rpartition("\n")[2]  # the summary
            left = dovecot.count(user=user)
            if usage.returncode != 0 or left:
                notes.append(f"{label} exited {usage.returncode} with {left} mails left in INBOX "
                             f"(log: var/bench/ingest/{user}.log)")
            rows.append(Row(label, len(mails) - left, usage, out.partition(": ")[2]))
            print(f"{label}: {usage} {out}", flush=True)

        spec = json.dumps({"host": dovecot.host, "port": dovecot.port, "user": "floor",
                           "password": dovecot.password})
        usage = measure([sys.executable, str(Path(__file__).resolve()), "--floor-child", spec],
                        BASE / "floor.log", stdout=BASE / "floor.out")
        floor = json.loads((BASE / "floor.out").read_text() or "{}")
        rows.append(Row("floor: aioimaplib fetch + `email` compat32 parse", floor.get("parsed", 0), usage,
                        f"{floor.get('bytes', 0) / 1e6:.0f} MB fetched, no database"))
        print(f"floor: {usage} {floor}", flush=True)

        peer: PeerResult | None = None
        if not args.no_peer:
            try:
                peer = run_peer(dovecot, "dh", mails, name="ingest")
            except PeerUnavailable as exc:
                notes.append(f"django-helpdesk could not be measured: {exc}")
        if peer is not None:
            rows.append(Row(f"django-helpdesk {VERSION} `get_email`", peer.ingested,
                            Usage(peer.wall_s, peer.cpu_s, peak_rss_mb=peer.peak_rss_mb, returncode=0),
                            f"{peer.tickets} tickets, {peer.followups} follow-ups; "
                            f"{len(peer.blocked)} mails aborted its run and were set aside"))
            print(f"django-helpdesk: {peer.ingested} in {peer.wall_s:.1f} s, {peer.rounds} runs", flush=True)

        started = time.perf_counter()
        profile_config = write_config(BASE / "profile.toml", BASE / "profile.db", dovecot, "floor",
                                      rules=True)
        stats, outcomes, profiled = profile_ingest(profile_config, args.profile_mails)
        stats.dump_stats(str(BASE / "ingest.pstats"))
        stages, shares = stage_table(stats, profiled)
        print(f"profiled {profiled} mails in {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        dovecot.kill()

    tg, fl = rows[0], rows[len(ours)]
    table = ["| contender | mails | wall s | mails/s | CPU ms/mail | peak RSS MB | notes |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        table.append(f"| {row.name} | {row.mails} | {row.usage.wall_s:.1f} | {row.rate:.1f} | "
                     f"{row.cpu_ms:.1f} | {row.usage.peak_rss_mb:.0f} | {row.note} |")
    goals = [f"- ticketgate / floor: **{tg.rate / fl.rate:.2f}×** the floor's rate "
             f"(goal ≥ 0.5×: {'met' if tg.rate >= 0.5 * fl.rate else 'NOT met'}).",
             f"- CPU per mail: ticketgate **{tg.cpu_ms / fl.cpu_ms:.1f}×** the floor's "
             f"({tg.cpu_ms:.1f} vs {fl.cpu_ms:.1f} ms; goal ≤ 2×: "
             f"{'met' if tg.cpu_ms <= 2 * fl.cpu_ms else 'NOT met'})."]
    if peer is not None and peer.ingested:
        dh_rate = peer.rate_without_restarts
        goals.insert(0, f"- ticketgate / django-helpdesk: **{tg.rate / dh_rate:.1f}×** its rate "
                        f"(goal ≥ 10×: {'met' if tg.rate >= 10 * dh_rate else 'NOT met'}). Its rate here "
                        f"is {dh_rate:.1f} mails/s with the {peer.rounds - 1} restarts' startup "
                        f"({peer.startup_s:.1f} s each) taken out, {peer.rate:.1f} mails/s with them.")
    parse_share = (shares["parse"] + shares["sanitize"]) / shares["total"] if shares["total"] else 0
    body = "\n".join([
        f"One generated mailbox (`bench/corpus.py`, seed {args.seed}), seeded identically into one "
        f"private Dovecot user per contender (loopback, plain IMAP, SQLite on disk for both "
        f"databases). Each contender is a child process measured with `wait4` (wall, user+sys CPU, "
        f"ru_maxrss of that process alone). ticketgate runs with its default HTML sanitiser (nh3; "
        f"`--bleach` adds a run with `[html] sanitizer = \"bleach\"`), two channels, one agent and "
        f"the example rules in `rules/` (acknowledgements and agent notifications go to its outbox; "
        f"no SMTP configured) and moves each mail to `Processed`. django-helpdesk renders its mails "
        f"to a dummy backend and deletes each mail. It aborts its whole run on a mail it cannot parse "
        f"(forwarded mails with 8-bit text in the attached `message/rfc822`: `UnicodeEncodeError` "
        f"in `process_as_attachment`) and would stop at that mail on every later run; the bench "
        f"sets such a mail aside as an admin would and starts `get_email` again. Every run counts.",
        "", summary(generated), "", "\n".join(table), "", *goals, *(f"- {n}" for n in notes), "",
        f"**Where ticketgate's ingest time goes** ({profiled} mails of the same mailbox fetched with "
        f"`ImapMailbox.fetch`, parsed and packed as the parse worker does (mails over 4 MiB are "
        f"left to the pipeline, as in the service) and fed to `gateway.pipeline.process`, all "
        f"in one process under cProfile (in the service the worker's share runs on the other "
        f"core), "
        f"outcomes {dict(outcomes)}; cProfile inflates call-heavy pure-Python code such as bleach/"
        f"html5lib, so read shares, not absolute times; profile saved to "
        f"`var/bench/ingest/ingest.pstats`):", "", stages, "",
        f"Parsing and sanitising together take {parse_share:.0%} of the profiled time. Top "
        f"functions by self time:", "", top_functions(stats),
    ])
    print("\n" + body)
    write_section("ingest", command, body)


if __name__ == "__main__":
    main()
