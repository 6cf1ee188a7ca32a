"""A private Dovecot IMAP instance for tests and the demo."""

from __future__ import annotations

import argparse
import contextlib
import email.parser
import email.policy
import grp
import hashlib
import imaplib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MAIL_USER = "vmail"
START_TIMEOUT = 20.0
FETCH_BATCH = 200
_USER_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
_LIST_RE = re.compile(rb'\((?P<flags>[^)]*)\) (?P<sep>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)')
_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
_apt_updated = False


def _which(name: str) -> str | None:
    """Find an executable on PATH or in the sbin directories."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN_DIRS])
    return shutil.which(name, path=path)


def _dovecot_bin() -> str:
    """Return the path of the dovecot binary or raise RuntimeError."""
    found = _which("dovecot")
    if found is None:
        raise RuntimeError("dovecot is not installed (call ensure_installed())")
    return found


def _tail(path: Path, lines: int = 40) -> str:
    """Return the last lines of a text file, or a note when it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} missing)"
    return "\n".join(text.splitlines()[-lines:])


def _apt(*args: str) -> None:
    """Run apt-get non-interactively; raise RuntimeError with the output tail on failure."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Output goes to a file, not a pipe: a daemon started by a postinst script would keep
    # the pipe open and the caller would never see EOF.
    with tempfile.NamedTemporaryFile("w+", prefix="apt-", suffix=".log") as out:
        proc = subprocess.run(
            ["apt-get", *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            tail = _tail(Path(out.name))
            raise RuntimeError(f"apt-get {' '.join(args)} failed ({proc.returncode}):\n{tail}")


def ensure_installed() -> None:
    """Install dovecot-imapd if missing and create the `vmail` system user (root only)."""
    global _apt_updated
    if _which("dovecot") is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise RuntimeError("dovecot is missing and cannot be installed (needs root and apt)")
        if not _apt_updated:
            _apt("update")
            _apt_updated = True
        _apt("install", "-y", "--no-install-recommends", "dovecot-imapd")
        if _which("dovecot") is None:
            raise RuntimeError("apt-get installed dovecot-imapd but no dovecot binary was found")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(MAIL_USER)
        except KeyError:
            proc = subprocess.run(
                [
                    _which("useradd") or "useradd",
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    MAIL_USER,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0 and proc.returncode != 9:  # 9: user exists (race)
                raise RuntimeError(f"useradd {MAIL_USER} failed: {proc.stderr.strip()}") from None


def dovecot_version() -> tuple[int, ...]:
    """Return the installed Dovecot version as a tuple of ints, e.g. (2, 3, 19, 1)."""
    out = subprocess.run(
        [_dovecot_bin(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.match(r"\s*(\d+(?:\.\d+)*)", out)
    if match is None:
        raise RuntimeError(f"cannot parse `dovecot --version` output: {out!r}")
    return tuple(int(part) for part in match.group(1).split("."))


def _free_port(host: str) -> int:
    """Return a TCP port that is free on host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _greets(host: str, port: int) -> bool:
    """Tell whether an IMAP server at host:port accepts a connection and sends `* OK`."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            data = b""
            while b"\r\n" not in data and len(data) < 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.startswith(b"* OK")
    except OSError:
        return False


def _port_open(host: str, port: int) -> bool:
    """Tell whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    """Tell whether a process with this pid exists (and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    """Return the pids of the direct children of a process."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[-1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _quote(mailbox: str) -> str:
    """Quote a mailbox name as an IMAP quoted string (imaplib does not)."""
    if not mailbox.isascii():
        raise ValueError(f"non-ASCII mailbox names are not supported: {mailbox!r}")
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(raw: bytes) -> str:
    """Decode a mailbox name from a LIST response (quoted string or atom)."""
    text = raw.decode("utf-8", errors="replace")
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


@dataclass
class Dovecot:
    """A running private Dovecot instance serving IMAP on host:port."""

    base: Path
    host: str
    port: int
    password: str
    users: tuple[str, ...] = field(default=("support",))
    capability: str | None = None  # None: Dovecot's own list (with MOVE)
    tls_port: int = 0  # implicit TLS (imaps) listener; 0: none
    ssl_cert: str = ""  # PEM files; with them the plain port offers STARTTLS
    ssl_key: str = ""
    introspection_url: str = ""  # passdb oauth2: XOAUTH2 / OAUTHBEARER checked against this URL

    @classmethod
    def start(
        cls,
        base: Path,
        users: Sequence[str] = ("support",),
        password: str = "secret",
        port: int | None = None,
        capability: str | None = None,
        tls: tuple[Path, Path] | None = None,
        introspection_url: str | None = None,
    ) -> Dovecot:
        """Write a private config under base, start Dovecot and wait for its greeting.

        capability replaces the advertised IMAP capabilities (`imap_capability`), e.g. a
        list without MOVE to play an older server that only has COPY and EXPUNGE.
        tls (certificate, key) adds an implicit-TLS listener on tls_port and STARTTLS on port;
        introspection_url adds XOAUTH2 and OAUTHBEARER sign-in checked by that RFC 7662 endpoint.
        Password logins keep working either way, also without TLS.
        """
        ensure_installed()
        version = dovecot_version()
        if version[:2] != (2, 3):
            raise RuntimeError(f"unsupported Dovecot version {version}: this helper speaks 2.3")
        for user in users:
            if not _USER_RE.fullmatch(user):
                raise ValueError(f"user names must be lower-case [a-z0-9._-]: {user!r}")
        if not users:
            raise ValueError("at least one user is needed")
        if any(ch in password for ch in ":\r\n"):
            raise ValueError("the password must not contain ':' or line breaks")
        base = Path(base).resolve()
        base.mkdir(parents=True, exist_ok=True)
        previous = cls._from_state(base)
        if previous is not None:
            previous.stop()
        host = "127.0.0.1"
        server = cls(
            base=base,
            host=host,
            port=port if port is not None else _free_port(host),
            password=password,
            users=tuple(users),
            capability=capability,
            tls_port=_free_port(host) if tls else 0,
            ssl_cert=str(Path(tls[0]).resolve()) if tls else "",
            ssl_key=str(Path(tls[1]).resolve()) if tls else "",
            introspection_url=introspection_url or "",
        )
        server._write_config()
        server._launch()
        server._write_state()
        return server

    # -- paths -------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        """Path of the generated dovecot.conf."""
        return self.base / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        """Path of Dovecot's own log."""
        return self.base / "dovecot.log"

    @property
    def stdio_path(self) -> Path:
        """Path of the file receiving the master's stdout and stderr."""
        return self.base / "dovecot.stdio.log"

    @property
    def run_dir(self) -> Path:
        """Dovecot's base_dir (sockets, pid file): short enough for unix socket paths."""
        run = self.base / "run"
        if len(str(run)) <= 70:
            return run
        digest = hashlib.sha1(str(self.base).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"dovecot-{digest}"

    def maildir(self, user: str = "support") -> Path:
        """Return the Maildir (INBOX) directory of a user."""
        return self.base / "mail" / user

    # -- lifecycle -----------------------------------------------------------------------

    def _write_config(self) -> None:
        """Write dovecot.conf, the passwd-file and the Maildir roots."""
        as_root = os.geteuid() == 0
        entry = pwd.getpwnam(MAIL_USER) if as_root else pwd.getpwuid(os.geteuid())
        uid, gid = entry.pw_uid, entry.pw_gid
        mail_root = self.base / "mail"
        mail_root.mkdir(exist_ok=True)
        for path in (mail_root, *(self.maildir(user) for user in self.users)):
            path.mkdir(exist_ok=True)
            if as_root:
                os.chown(path, uid, gid)
        (self.base / "state").mkdir(exist_ok=True)
        # As root, mail processes chroot into base/mail ("/./" in home) so that they never
        # need to traverse base's parents, which may be private (pytest's tmp_path is 0700).
        lines = []
        for user in self.users:
            home = f"{mail_root}/./{user}" if as_root else str(self.maildir(user))
            lines.append(f"{user}:{{PLAIN}}{self.password}:{uid}:{gid}::{home}::\n")
        users_file = self.base / "users"
        users_file.write_text("".join(lines))
        users_file.chmod(0o600)
        if as_root:
            privileges = f"""\
valid_chroot_dirs = {mail_root}
service auth {{
  # passwd-file is read by the auth process: as root it can read it below a 0700 dir.
  user = root
}}
"""
        else:
            privileges = f"""\
default_internal_user = {entry.pw_name}
default_internal_group = {grp.getgrgid(gid).gr_name}
default_login_user = {entry.pw_name}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""
        advertised = "" if self.capability is None else f"imap_capability = {self.capability}\n"
        ssl = f"ssl = yes\nssl_cert = <{self.ssl_cert}\nssl_key = <{self.ssl_key}\n" \
            "ssl_min_protocol = TLSv1.2" if self.ssl_cert else "ssl = no"
        mechanisms, oauth_passdb, password_only = "plain login", "", ""
        if self.introspection_url:
            oauth_file = self.base / "oauth2.conf.ext"
            oauth_file.write_text(
                "introspection_mode = post\n"
                f"introspection_url = {self.introspection_url}\n"
                "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
                "force_introspection = yes\n")
            mechanisms = "plain login xoauth2 oauthbearer"
            oauth_passdb = f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n" \
                f"  args = {oauth_file}\n}}\n"
            password_only = "  mechanisms = plain login\n"
        config = f"""\
# Generated by tests/servers/dovecot.py for Dovecot 2.3: a private test instance.
base_dir = {self.run_dir}
state_dir = {self.base / "state"}
log_path = {self.log_path}
protocols = imap
listen = {self.host}
{ssl}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
auth_verbose = yes
first_valid_uid = 1
mail_location = maildir:~
mail_fsync = never
mail_max_userip_connections = 1000
{advertised}namespace inbox {{
  inbox = yes
  separator = /
}}
{oauth_passdb}passdb {{
  driver = passwd-file
{password_only}  args = scheme=PLAIN username_format=%n {users_file}
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {users_file}
}}
service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.tls_port}
  }}
}}
{privileges}"""
        self.config_path.write_text(config)

    def _write_state(self) -> None:
        """Record connection details in base/state.json."""
        (self.base / "state.json").write_text(json.dumps(self.info()) + "\n")

    def info(self) -> dict[str, object]:
        """Return the connection details as a JSON-serialisable dict."""
        return {
            "host": self.host,
            "port": self.port,
            "password": self.password,
            "users": list(self.users),
            "base": str(self.base),
            "capability": self.capability,
            "tls_port": self.tls_port,
            "ssl_cert": self.ssl_cert,
            "ssl_key": self.ssl_key,
            "introspection_url": self.introspection_url,
        }

    @classmethod
    def _from_state(cls, base: Path) -> Dovecot | None:
        """Rebuild a Dovecot from base/state.json, or None when there is none."""
        try:
            state = json.loads((base / "state.json").read_text())
            return cls(
                base=base,
                host=str(state["host"]),
                port=int(state["port"]),
                password=str(state["password"]),
                users=tuple(str(user) for user in state["users"]),
                capability=state.get("capability"),
                tls_port=int(state.get("tls_port", 0)),
                ssl_cert=str(state.get("ssl_cert", "")),
                ssl_key=str(state.get("ssl_key", "")),
                introspection_url=str(state.get("introspection_url", "")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @classmethod
    def attach(cls, base: Path) -> Dovecot:
        """Return the instance recorded in base/state.json (running or not)."""
        server = cls._from_state(Path(base).resolve())
        if server is None:
            raise RuntimeError(f"no Dovecot state in {base}")
        return server

    def _master_pid(self) -> int | None:
        """Return the pid of a live master for this instance, or None."""
        try:
            pid = int((self.run_dir / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _pid_alive(pid) else None

    def _failure(self, what: str) -> RuntimeError:
        """Build a RuntimeError carrying the log tails."""
        return RuntimeError(
            f"{what}\n--- {self.stdio_path.name} ---\n{_tail(self.stdio_path)}"
            f"\n--- {self.log_path.name} ---\n{_tail(self.log_path)}"
        )

    def _launch(self) -> None:
        """Start the master (it daemonizes) and wait until IMAP greets."""
        if _port_open(self.host, self.port):
            raise RuntimeError(f"port {self.host}:{self.port} is already in use")
        with self.stdio_path.open("ab") as out:
            # stdio must be a file: the master keeps the caller's stderr open forever.
            proc = subprocess.run(
                [_dovecot_bin(), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=START_TIMEOUT,
            )
        if proc.returncode != 0:
            raise self._failure(f"dovecot exited with status {proc.returncode}")
        # The master has created its sockets before returning. Without this one, auth
        # cannot apply anvil's penalty (about 4 s per login after a wrong password).
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir / "anvil-auth-penalty").unlink()
        deadline = time.monotonic() + START_TIMEOUT
        while not _greets(self.host, self.port):
            if time.monotonic() > deadline:
                raise self._failure(f"Dovecot did not greet on {self.host}:{self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop cleanly and wait until the port is closed; idempotent (takes about 1 s)."""
        # SIGTERM to the master is what `dovecot stop` does, but that command then polls
        # slowly (2.7 s in all); the master itself sleeps a fixed second for its log process.
        self._terminate(signal.SIGTERM)

    def kill(self) -> None:
        """Stop at once (SIGKILL to the master and its children); idempotent, for teardown."""
        self._terminate(signal.SIGKILL)

    def _terminate(self, sig: signal.Signals) -> None:
        """Signal the master (and with SIGKILL its children), then wait for the port to close."""
        pid = self._master_pid()
        victims = [pid] if pid is not None else []
        if pid is not None and sig == signal.SIGKILL:
            victims += _children(pid)
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, sig)
        deadline = time.monotonic() + START_TIMEOUT
        while any(_pid_alive(victim) for victim in victims) or _port_open(self.host, self.port):
            if time.monotonic() > deadline:
                raise self._failure(f"Dovecot did not stop (pid {pid}, port {self.port})")
            time.sleep(0.01)
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir / "master.pid").unlink()
        if self.run_dir != self.base / "run":
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start again with the same port, config and mail."""
        self.stop()
        self._launch()

    # -- IMAP helpers ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _imap(self, user: str) -> Iterator[imaplib.IMAP4]:
        """Yield a logged-in imaplib connection for user."""
        conn = imaplib.IMAP4(self.host, self.port, timeout=30)
        try:
            conn.login(user, self.password)
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    @staticmethod
    def _append(conn: imaplib.IMAP4, folder: str, raw: bytes) -> None:
        """APPEND one mail, creating the folder when the server asks for it."""
        typ, data = conn.append(_quote(folder), "", "", raw)
        if typ == "OK":
            return
        if any(b"TRYCREATE" in bytes(item) for item in data if item):
            typ_create, data_create = conn.create(_quote(folder))
            if typ_create != "OK":
                raise RuntimeError(f"CREATE {folder!r} failed: {data_create!r}")
            typ, data = conn.append(_quote(folder), "", "", raw)
            if typ == "OK":
                return
        raise RuntimeError(f"APPEND to {folder!r} failed: {data!r}")

    def append(self, raw: bytes, user: str = "support", folder: str = "INBOX") -> None:
        """Append one raw mail to a folder (created if missing)."""
        with self._imap(user) as conn:
            self._append(conn, folder, raw)

    def seed(self, mails: Iterable[bytes], user: str = "support", folder: str = "INBOX") -> int:
        """Append many raw mails over one connection; return how many."""
        count = 0
        with self._imap(user) as conn:
            for raw in mails:
                self._append(conn, folder, raw)
                count += 1
        return count

    def message_ids(self, user: str = "support", folder: str = "INBOX") -> list[str]:
        """Return the Message-IDs in a folder in UID order; [] when the folder is missing."""
        # Mails without a Message-ID header are skipped.
        parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
        ids: list[str] = []
        with self._imap(user) as conn:
            typ, data = conn.select(_quote(folder), readonly=True)
            if typ != "OK":
                return []
            total = int(data[0] or b"0")
            for first in range(1, total + 1, FETCH_BATCH):
                last = min(first + FETCH_BATCH - 1, total)
                typ, fetched = conn.fetch(
                    f"{first}:{last}", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
                )
                if typ != "OK":
                    raise RuntimeError(f"FETCH {first}:{last} failed: {fetched!r}")
                for item in fetched:
                    if not isinstance(item, tuple):
                        continue
                    value = parser.parsebytes(item[1]).get("Message-ID")
                    if value is not None:
                        ids.append(" ".join(str(value).split()))
        return ids

    def capabilities(self, user: str = "support") -> set[str]:
        """The capabilities the server advertises after login."""
        with self._imap(user) as conn:
            typ, data = conn.capability()
        if typ != "OK" or not data or not isinstance(data[0], bytes):
            raise RuntimeError(f"CAPABILITY failed: {data!r}")
        return set(data[0].decode().upper().split())

    def count(self, user: str = "support", folder: str = "INBOX") -> int:
        """Return the number of mails in a folder (0 when it is missing)."""
        with self._imap(user) as conn:
            typ, data = conn.status(_quote(folder), "(MESSAGES)")
        if typ != "OK" or not data or not isinstance(data[0], bytes):
            return 0
        match = re.search(rb"MESSAGES (\d+)", data[0])
        return int(match.group(1)) if match else 0

    def delete_folder(self, folder: str, user: str = "support") -> None:
        """Delete a folder with its mails (a later append recreates it with a new UIDVALIDITY)."""
        with self._imap(user) as conn:
            typ, data = conn.delete(_quote(folder))
        if typ != "OK":
            raise RuntimeError(f"DELETE {folder!r} failed: {data!r}")

    def folders(self, user: str = "support") -> list[str]:
        """Return the names of all folders of a user."""
        names: list[str] = []
        with self._imap(user) as conn:
            typ, data = conn.list()
        if typ != "OK":
            raise RuntimeError(f"LIST failed: {data!r}")
        for item in data:
            if isinstance(item, tuple):  # name sent as a literal
                names.append(item[1].decode("utf-8", errors="replace"))
            elif isinstance(item, bytes) and (match := _LIST_RE.match(item)):
                names.append(_unquote(match.group("name")))
        return names


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: start or stop a Dovecot instance in a directory."""
    parser = argparse.ArgumentParser(prog="python -m tests.servers.dovecot")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start an instance and print its details as JSON")
    start.add_argument("--dir", required=True, type=Path)
    start.add_argument("--port", type=int, default=None)
    start.add_argument("--user", action="append", dest="users", help="repeatable")
    start.add_argument("--password", default="secret")
    stop = sub.add_parser("stop", help="stop the instance recorded in DIR/state.json")
    stop.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    if args.command == "start":
        server = Dovecot.start(
            args.dir, users=args.users or ("support",), password=args.password, port=args.port
        )
        print(json.dumps(server.info()), flush=True)
    else:
        Dovecot.attach(args.dir).stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
