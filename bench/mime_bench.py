"""smimekit's MIME parser against the stdlib ``email`` package, measured in the same run on the same bytes.

    python3 bench/mime_bench.py [--quick] [--reps N] [--no-large] [--stdlib-full] [--profile] [--tmpdir DIR]

What is timed, per message, for each side (see bench/README.md):

* smimekit: ``parse(data)``, the decoded Subject, ``walk()``, ``decoded()`` of every leaf;
* stdlib: ``email.message_from_bytes(data, policy=email.policy.default)``, ``msg["subject"]``, ``walk()``,
  ``get_payload(decode=True)`` of every non-multipart part.

Three workloads: (1) the mixed corpus, (2) small plain messages only, both in memory, best of N runs after
one warm-up with the garbage collector off while timing; (3) one large message with a single base64
attachment, written to a temporary file and parsed from it in a fresh process whose peak RSS is read.
Prints a table, the ratios smimekit/stdlib, the share of smimekit's time that ``binascii.a2b_base64``
alone takes (the floor both sides share) and one PASS/FAIL line per target of issue 2 §5. Exits 1 when the
two parsers disagree on the content (then the timings compare different work) or a digest does not match.
"""

from __future__ import annotations

import argparse
import binascii
import cProfile
import email
import email.policy
import gc
import hashlib
import io
import json
import math
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import metadata

import corpus
from smimekit.mime import parse

HERE = os.path.dirname(os.path.abspath(__file__))
MiB = 1 << 20
GiB = 1 << 30

# the targets of issue 2 §5
TARGET_MBPS_RATIO = 10.0
TARGET_SMALL_MSGS_RATIO = 3.0
TARGET_RSS_MIB = 64.0
TARGET_RSS_SIZE = GiB
PEER_RSS_CEILING = 8 * GiB  # never run the stdlib on a size whose scaled estimate needs more than this
FLOOR = "binascii.a2b_base64"  # the reference workload timed with the mixed corpus


@dataclass(frozen=True)
class Config:
    name: str
    mixed: int  # messages in the mixed corpus
    small: int  # small plain messages
    reps: int  # timed repetitions (best of)
    large: int  # bytes of the large message for smimekit
    peer_large: int  # bytes of the large message for the side-by-side run (smimekit and stdlib)


FULL = Config("full", mixed=600, small=3000, reps=7, large=GiB, peer_large=100 * MiB)
QUICK = Config("quick", mixed=150, small=600, reps=3, large=100 * MiB, peer_large=25 * MiB)


# ------------------------------------------------------------------------------------------- the work


def smimekit_work(messages: Sequence[bytes]) -> int:
    """Parse, decode the Subject, walk, decode every leaf; returns the decoded bytes (to keep it honest)."""
    total = 0
    for data in messages:
        msg = parse(data)
        msg.headers.get("subject")
        for e in msg.walk():
            if e.is_multipart() or e.message is not None:
                continue  # containers: multiparts and message/rfc822 parts, as the stdlib skips them
            total += len(e.decoded())
    return total


def stdlib_work(messages: Sequence[bytes]) -> int:
    """The same with ``email.message_from_bytes(policy=email.policy.default)``."""
    policy = email.policy.default
    total = 0
    for data in messages:
        msg = email.message_from_bytes(data, policy=policy)
        msg["subject"]  # decoding the header is part of the work
        for part in msg.walk():
            if part.is_multipart():
                continue
            total += len(part.get_payload(decode=True))
    return total


SIDES: dict[str, Callable[[Sequence[bytes]], int]] = {"smimekit": smimekit_work, "stdlib": stdlib_work}


def smimekit_fingerprint(data: bytes) -> tuple[int, str, str]:
    msg = parse(data)
    h = hashlib.sha256()
    n = 0
    for e in msg.walk():
        if not e.is_multipart() and e.message is None:
            n += 1
            h.update(hashlib.sha256(e.decoded()).digest())
    return n, h.hexdigest(), " ".join((msg.headers.get("subject") or "").split())


def stdlib_fingerprint(data: bytes) -> tuple[int, str, str]:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    h = hashlib.sha256()
    n = 0
    for part in msg.walk():
        if not part.is_multipart():
            n += 1
            h.update(hashlib.sha256(part.get_payload(decode=True)).digest())
    return n, h.hexdigest(), " ".join(str(msg["subject"] or "").split())


def cross_check(samples: Sequence[corpus.Sample]) -> tuple[int, int, list[str]]:
    """(messages whose leaves and decoded bytes agree, subjects that differ, notes on disagreements)."""
    same = subj = 0
    notes: list[str] = []
    for i, s in enumerate(samples):
        a, b = smimekit_fingerprint(s.data), stdlib_fingerprint(s.data)
        if a[:2] == b[:2]:
            same += 1
        elif len(notes) < 5:
            notes.append(
                f"message {i} ({s.kind}): smimekit {a[0]} leaves, stdlib {b[0]} leaves, digests differ"
            )
        if a[2] != b[2]:
            subj += 1
            if len(notes) < 5:
                notes.append(f"message {i} subject: smimekit {a[2]!r} vs stdlib {b[2]!r}")
    return same, subj, notes


# ------------------------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timing:
    messages: int
    nbytes: int
    best: dict[str, float]  # side -> best seconds

    def mbps(self, side: str) -> float:
        return self.nbytes / 1e6 / self.best[side]

    def msgs(self, side: str) -> float:
        return self.messages / self.best[side]

    def ratio(self) -> float:
        return self.best["stdlib"] / self.best["smimekit"]


def time_sides(
    messages: Sequence[bytes], reps: int, extra: dict[str, Callable[[], object]] | None = None
) -> Timing:
    """One warm-up each, then ``reps`` rounds rotating the order; the best time of each side.

    ``extra`` adds reference workloads timed in the same rounds (so under the same conditions)."""
    runs: dict[str, Callable[[], object]] = {name: partial(work, messages) for name, work in SIDES.items()}
    runs.update(extra or {})
    for run in runs.values():
        run()
    best = dict.fromkeys(runs, math.inf)
    names = list(runs)
    for rep in range(reps):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            gc.collect()
            gc.disable()
            try:
                t0 = time.perf_counter()
                runs[name]()
                dt = time.perf_counter() - t0
            finally:
                gc.enable()
            best[name] = min(best[name], dt)
    return Timing(len(messages), sum(map(len, messages)), best)


def base64_bodies(messages: Sequence[bytes]) -> list[bytes]:
    """Every base64 body of ``messages``, still encoded, taken out with the stdlib (not with smimekit)."""
    bodies = []
    for data in messages:
        for part in email.message_from_bytes(data, policy=email.policy.default).walk():
            if (
                not part.is_multipart()
                and part.get("content-transfer-encoding", "").strip().lower() == "base64"
            ):
                bodies.append(part.get_payload(decode=False).encode("ascii", "surrogateescape"))
    return bodies


def a2b_all(bodies: Sequence[bytes]) -> None:
    """The base64 floor: both sides decode base64 with ``binascii.a2b_base64``, so this time is a floor under
    smimekit's time and ``stdlib time / floor`` bounds the ratio a parser decoding with it can reach."""
    for body in bodies:
        binascii.a2b_base64(body)


# ------------------------------------------------------------------------------------------- large message


@dataclass(frozen=True)
class LargeRun:
    side: str
    size: int
    total_s: float
    parse_s: float
    peak_mib: float
    base_mib: float
    sha_ok: bool

    @property
    def mbps(self) -> float:
        return self.size / 1e6 / self.total_s


def run_child(side: str, info: corpus.LargeMessage) -> LargeRun:
    cmd = [sys.executable, os.path.join(HERE, "rss_child.py"), side, info.path, info.filename]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{side} child failed ({proc.returncode}):\n{proc.stderr.strip()}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return LargeRun(
        side,
        info.size,
        r["total_s"],
        r["parse_s"],
        r["peak_kib"] / 1024,
        r["base_kib"] / 1024,
        r["sha256"] == info.sha256,
    )


def large_runs(cfg: Config, tmp: str, *, stdlib_full: bool) -> tuple[list[LargeRun], float | None, str]:
    """smimekit at ``cfg.large``; smimekit and the stdlib side by side at ``cfg.peer_large``; with
    ``stdlib_full`` the stdlib at ``cfg.large`` too, when its scaled estimate stays under the ceiling.

    Returns the runs, the stdlib's peak RSS scaled to ``cfg.large`` (MiB) and a note."""
    free = shutil.disk_usage(tmp).free
    if free < cfg.large + cfg.peer_large + GiB:
        return [], None, f"skipped: {free / GiB:.1f} GiB free in {tmp}"
    runs: list[LargeRun] = []
    big_path = os.path.join(tmp, "large.eml")
    peer_path = os.path.join(tmp, "peer.eml")
    t0 = time.perf_counter()
    big = corpus.write_large_message(big_path, cfg.large)
    gen_s = time.perf_counter() - t0
    runs.append(run_child("smimekit", big))
    peer = corpus.write_large_message(peer_path, cfg.peer_large, seed=2)
    runs.append(run_child("smimekit", peer))
    std = run_child("stdlib", peer)
    runs.append(std)
    os.unlink(peer_path)
    scaled = std.base_mib + (std.peak_mib - std.base_mib) * cfg.large / cfg.peer_large
    notes = [f"{cfg.large / MiB:.0f} MiB file written in {gen_s:.1f} s, read back from the page cache"]
    if not stdlib_full:
        notes.append(
            f"the stdlib runs at {cfg.peer_large / MiB:.0f} MiB only (--stdlib-full: at full size too)"
        )
    elif scaled * MiB > PEER_RSS_CEILING:
        notes.append(
            f"the stdlib does not run at full size: it would need > {PEER_RSS_CEILING / GiB:.0f} GiB"
        )
    else:
        runs.append(run_child("stdlib", big))
    os.unlink(big_path)
    return runs, scaled, "; ".join(notes)


# ------------------------------------------------------------------------------------------- profile


def profile(samples: dict[str, list[bytes]], top: int = 25) -> None:
    """cProfile of smimekit's side on each corpus: the functions with the most own time."""
    for name, messages in samples.items():
        smimekit_work(messages)
        prof = cProfile.Profile()
        prof.enable()
        smimekit_work(messages)
        prof.disable()
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("tottime").print_stats(top)
        print(f"\n=== cProfile, smimekit side, {name} corpus (sorted by own time) ===")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:12000])


# ------------------------------------------------------------------------------------------- report


def fmt_n(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_timings(results: dict[str, Timing], b64_bytes: int) -> None:
    print(f"\n{'parse + walk + decode':22} {'smimekit':^28}   {'stdlib email':^28}   {'ratio':>7}")
    head = f"{'MB/s':>8} {'msg/s':>9} {'best s':>9}"
    print(f"{'':22} {head}   {head}")
    for name, t in results.items():
        cells = [
            f"{t.mbps(side):8.1f} {fmt_n(t.msgs(side)):>9} {t.best[side]:9.3f}"
            for side in ("smimekit", "stdlib")
        ]
        print(f"{name:22} {cells[0]}   {cells[1]}   {t.ratio():6.2f}×")
    mixed = results["mixed corpus"]
    floor = mixed.best[FLOOR]
    print(
        f"floor: {FLOOR} alone on the mixed corpus's {b64_bytes / 1e6:.1f} MB of base64 takes {floor:.3f} s "
        f"(same rounds) = {100 * floor / mixed.best['smimekit']:.0f}% of smimekit's time;\n"
        f"       a parser decoding with it stays under {mixed.best['stdlib'] / floor:.1f}× the stdlib here"
    )


def print_large(cfg: Config, runs: list[LargeRun], scaled: float | None, note: str) -> None:
    print("\nlarge message, fresh process: parse_file + walk + every leaf's decoded body through SHA-256")
    print(f"  ({note})")
    if not runs:
        return
    print(
        f"  {'':8} {'size':>9} {'parse':>8} {'total':>8} {'MB/s':>7} {'peak RSS':>10} {'after import':>13}  SHA-256"
    )
    for r in runs:
        print(
            f"  {r.side:8} {r.size / MiB:5.0f} MiB {r.parse_s:7.2f}s {r.total_s:7.2f}s {r.mbps:7.1f} "
            f"{r.peak_mib:6.1f} MiB {r.base_mib:9.1f} MiB  {'ok' if r.sha_ok else 'MISMATCH'}"
        )
    if scaled is not None and not any(r.side == "stdlib" and r.size == runs[0].size for r in runs):
        print(
            f"  stdlib at {cfg.large / MiB:.0f} MiB: ≈ {scaled / 1024:.1f} GiB peak RSS "
            f"(scaled linearly from {cfg.peer_large / MiB:.0f} MiB)"
        )


def print_targets(cfg: Config, results: dict[str, Timing], runs: list[LargeRun]) -> None:
    mixed, small = results["mixed corpus"], results["small messages"]
    print("\ntargets (issue 2 §5)")
    print(
        f"  {verdict(mixed.ratio() >= TARGET_MBPS_RATIO)}  MB/s ≥ {TARGET_MBPS_RATIO:.0f}× the stdlib "
        f"(mixed corpus): {mixed.ratio():.2f}× ({mixed.mbps('smimekit'):.1f} vs {mixed.mbps('stdlib'):.1f} MB/s)"
    )
    print(
        f"  {verdict(small.ratio() >= TARGET_SMALL_MSGS_RATIO)}  messages/s ≥ {TARGET_SMALL_MSGS_RATIO:.0f}× the "
        f"stdlib (small messages): {small.ratio():.2f}× ({fmt_n(small.msgs('smimekit'))} vs "
        f"{fmt_n(small.msgs('stdlib'))} msg/s)"
    )
    if not runs:
        print(f"  SKIP  peak RSS ≤ {TARGET_RSS_MIB:.0f} MiB at 1 GiB: not measured")
        return
    big = runs[0]
    at = (
        ""
        if cfg.large >= TARGET_RSS_SIZE
        else f" — measured at {big.size / MiB:.0f} MiB, not 1 GiB (--quick)"
    )
    print(
        f"  {verdict(big.peak_mib <= TARGET_RSS_MIB)}  peak RSS ≤ {TARGET_RSS_MIB:.0f} MiB at 1 GiB: "
        f"{big.peak_mib:.1f} MiB{at}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument(
        "--quick", action="store_true", help="smaller corpus and a 100 MiB large message (smoke run)"
    )
    ap.add_argument("--reps", type=int, default=None, help="timed repetitions per side (best of; at least 3)")
    ap.add_argument("--no-large", action="store_true", help="skip the large-message (peak RSS) test")
    ap.add_argument(
        "--stdlib-full", action="store_true", help="run the stdlib on the large message too (if < 8 GiB RSS)"
    )
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of smimekit's side")
    ap.add_argument(
        "--tmpdir", default=None, help="where to write the large message (default: $TMPDIR or /tmp)"
    )
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    reps = max(3, args.reps or cfg.reps)
    started = time.perf_counter()

    try:
        version = metadata.version("smimekit")
    except metadata.PackageNotFoundError:
        version = "?"
    print(f"smimekit MIME benchmark ({cfg.name} run) — smimekit {version} vs stdlib email")
    print(
        f"{platform.python_implementation()} {platform.python_version()} on {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at start); "
        f"best of {reps} after 1 warm-up, gc off while timing"
    )

    t0 = time.perf_counter()
    mixed = corpus.mixed_corpus(cfg.mixed)
    small = corpus.small_corpus(cfg.small)
    gen_s = time.perf_counter() - t0
    kinds = Counter(s.kind for s in mixed)
    sizes = sorted(len(s.data) for s in small)
    mixed_bytes = [s.data for s in mixed]
    small_bytes = [s.data for s in small]
    print(f"\ncorpus (seeded, generated in {gen_s:.1f} s)")
    print(
        f"  mixed  {len(mixed):5d} messages, {sum(map(len, mixed_bytes)) / 1e6:6.1f} MB: "
        + ", ".join(f"{k} {kinds[k]}" for k in corpus.KINDS)
    )
    print(
        f"  small  {len(small):5d} plain messages, {sum(sizes) / 1e6:6.1f} MB, "
        f"{sizes[0] / 1000:.1f}-{sizes[-1] / 1000:.1f} KB (median {sizes[len(sizes) // 2] / 1000:.1f} KB)"
    )

    same, subj, notes = cross_check(mixed + small)
    total = len(mixed) + len(small)
    print(
        f"cross-check: leaves and decoded bytes agree on {same}/{total} messages; decoded subjects differ on {subj}"
    )
    for note in notes:
        print(f"  ! {note}")
    failed = same != total

    if args.profile:
        profile({"mixed": mixed_bytes, "small": small_bytes})

    bodies = base64_bodies(mixed_bytes)
    results = {
        "mixed corpus": time_sides(mixed_bytes, reps, {FLOOR: partial(a2b_all, bodies)}),
        "small messages": time_sides(small_bytes, reps),
    }
    print_timings(results, sum(map(len, bodies)))

    runs: list[LargeRun] = []
    if not args.no_large:
        with tempfile.TemporaryDirectory(prefix="smimekit-bench-", dir=args.tmpdir) as tmp:
            runs, scaled, note = large_runs(cfg, tmp, stdlib_full=args.stdlib_full)
        print_large(cfg, runs, scaled, note)
        failed |= not all(r.sha_ok for r in runs)

    print_targets(cfg, results, runs)
    print(f"\n(run took {time.perf_counter() - started:.0f} s)")
    if failed:
        print("ERROR: the parsers disagree on content or a digest did not match; see above", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
