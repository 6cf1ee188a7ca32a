"""Parse cost: parse_mail over the generated mailbox and the fixtures, this tree against a base.

The base (default: the main branch) is taken from git into a temporary folder; each tree
is timed in its own process, alternately, several rounds, so both see the same machine.

    python bench/parse_bench.py [--base main] [--mails 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def time_tree(mails_file: Path) -> dict[str, float]:
    """In a worker process: CPU seconds to parse every mail once (after one warm-up pass)."""
    from gateway.intake.parse import parse_mail

    groups: dict[str, list[bytes]] = pickle.loads(mails_file.read_bytes())
    for raw in groups["fixtures"][:5]:
        parse_mail(raw)
    result = {}
    for name, mails in groups.items():
        started = time.process_time()
        for raw in mails:
            parse_mail(raw)
        result[name] = time.process_time() - started
    return result


def _worker(tree: Path, mails_file: Path) -> dict[str, float]:
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); "
            "sys.path.insert(1, sys.argv[3]); from parse_bench import time_tree; "
            "from pathlib import Path; print(json.dumps(time_tree(Path(sys.argv[2]))))")
    out = subprocess.run([sys.executable, "-c", code, str(tree), str(mails_file),
                          str(ROOT / "bench")], capture_output=True, text=True, check=True,
                         cwd=tree)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _base_tree(ref: str, into: Path) -> Path:
    """The gateway and store packages of a git ref, unpacked into a folder."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "gateway", "store"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    """Time both trees, print and record the figures."""
    from bench._report import write_section
    from bench.corpus import generate

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="main")
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    fixtures = [p.read_bytes() for p in sorted((ROOT / "tests" / "fixtures").glob("*.eml"))]
    groups = {"generated": generate(args.mails), "fixtures": fixtures * 20}
    base_rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.base],
                              capture_output=True, text=True, check=True).stdout.strip()
    head_rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        mails_file = Path(tmp) / "mails.pickle"
        mails_file.write_bytes(pickle.dumps(groups))
        base = _base_tree(args.base, Path(tmp))
        samples: dict[str, list[dict[str, float]]] = {"base": [], "this": []}
        for _ in range(args.rounds):
            samples["base"].append(_worker(base, mails_file))
            samples["this"].append(_worker(ROOT, mails_file))
    rows = []
    for name, mails in groups.items():
        base_s = statistics.median(s[name] for s in samples["base"])
        this_s = statistics.median(s[name] for s in samples["this"])
        rows.append(f"| {name} ({len(mails)} mails) | {1000 * base_s / len(mails):.2f} ms "
                    f"| {1000 * this_s / len(mails):.2f} ms | {this_s / base_s:.2f}× |")
    body = (f"`parse_mail` CPU time per mail, median of {args.rounds} rounds, each tree in its own "
            f"process (base `{args.base}` = {base_rev}, this tree = {head_rev} plus any "
            f"uncommitted changes). Generated: `bench/corpus.py` mailbox (seed 20261123); "
            f"fixtures: every `tests/fixtures/*.eml`, 20 times.\n\n"
            "| mails | base | this tree | this / base |\n|---|---|---|---|\n" + "\n".join(rows))
    print(body)
    if not args.no_write:
        write_section("parse", f"python bench/parse_bench.py --base {args.base} --mails "
                               f"{args.mails} --rounds {args.rounds}", body)


if __name__ == "__main__":
    main()
