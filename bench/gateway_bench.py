"""The S/MIME gateway behind a real Postfix, against a pass-through content filter behind the same Postfix.

    python3 bench/gateway_bench.py [--messages N] [--size 20480] [--concurrency 8,32] [--workers 8] [--processes 0]

One Postfix instance (from ``tests/servers``) with ``content_filter`` pointing at a port on 127.0.0.1;
first the pass-through filter (``tests/servers/passthrough.py``, which re-injects every message unchanged)
listens there, then ``smimekit gateway run`` (sign + encrypt: an internal sender, a recipient whose
certificate is in the store). Both run as processes of their own. Clients submit N messages of about
``--size`` bytes at each concurrency; an aiosmtpd sink (Postfix's relay host) notes when each arrives.
Printed: messages/s (N / time from the first submission to the last arrival), p50 and p99 latency
(submission to arrival), the ratio gateway / pass-through (target: >= 0.5x) and the CPU time the gateway
process used per message in the timed runs (from /proc; its worker processes not included). Not a test:
it checks that every message arrived exactly once (and, for the gateway, encrypted), exits 1 only when
not.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.gateway._proc import HOST, GatewayProcess  # noqa: E402
from tests.gateway._support import PASSPHRASE, Sink, make_store, message  # noqa: E402
from tests.servers.postfix import Postfix  # noqa: E402

SENDER, RECIPIENT = "alice@example.org", "bob@partner.example"
_MSGID = re.compile(rb"(?im)^Message-ID:\s*<bench-(\d+)-(\d+)@")

_PASSTHROUGH = """
import sys, time
sys.path[:0] = {paths!r}
from tests.servers.passthrough import PassThroughFilter
flt = PassThroughFilter()
flt.start()
print(flt.port, flush=True)
host, port = sys.stdin.readline().split()
flt.reinject_to = (host, int(port))
sys.stdin.read()   # until the benchmark closes our stdin
flt.stop()
"""


class TimedSink(Sink):
    """The relay host: notes the arrival time of each benchmark message by its Message-ID."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[tuple[int, int], float] = {}
        self.copies: dict[tuple[int, int], int] = {}
        self.encrypted = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        data = bytes(envelope.original_content or b"")
        m = _MSGID.search(data[:8192])
        if m:
            key = (int(m.group(1)), int(m.group(2)))
            with self.lock:
                self.arrived.setdefault(key, time.monotonic())
                self.copies[key] = self.copies.get(key, 0) + 1
                self.encrypted += b"application/pkcs7-mime" in data[:8192]
        return "250 2.0.0 Ok"


def _payload(size: int, run: int, seq: int) -> bytes:
    lines = max(1, size // 76)
    body = "".join(
        f"{i:06d} " + "lorem ipsum dolor sit amet consectetur adipiscing elit sed do ei\n"
        for i in range(lines)
    )
    data = message(SENDER, RECIPIENT, subject=f"bench {run}/{seq}", body=body)
    return re.sub(rb"(?im)^Message-ID:.*$", f"Message-ID: <bench-{run}-{seq}@bench>".encode(), data, count=1)


def _run(pf: Postfix, sink: TimedSink, run: int, n: int, concurrency: int, size: int) -> dict[str, float]:
    payloads = [_payload(size, run, i) for i in range(n)]
    submitted: dict[int, float] = {}
    counter = iter(range(n))
    lock = threading.Lock()

    def client() -> None:
        with smtplib.SMTP(pf.host, pf.submit_port, timeout=120) as s:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                submitted[i] = time.monotonic()
                s.sendmail(SENDER, [RECIPIENT], payloads[i])

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        for f in [pool.submit(client) for _ in range(concurrency)]:
            f.result()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        with sink.lock:
            done = sum(1 for i in range(n) if (run, i) in sink.arrived)
        if done == n:
            break
        time.sleep(0.02)
    with sink.lock:
        arrivals = {i: sink.arrived[(run, i)] for i in range(n) if (run, i) in sink.arrived}
        dupes = sum(1 for i in range(n) if sink.copies.get((run, i), 0) > 1)
    if len(arrivals) != n or dupes:
        raise SystemExit(f"run {run}: {len(arrivals)} of {n} messages arrived, {dupes} more than once")
    lat = sorted((arrivals[i] - submitted[i]) * 1000 for i in range(n))
    total = max(arrivals.values()) - start
    return {
        "rate": n / total,
        "p50": statistics.median(lat),
        "p99": lat[min(n - 1, int(0.99 * n))],
    }


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (None where /proc is not there)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=200, help="messages per run (default 200)")
    ap.add_argument("--size", type=int, default=20 * 1024, help="message size in bytes (default 20 KiB)")
    ap.add_argument("--concurrency", default="8,32", help="client concurrencies (default 8,32)")
    ap.add_argument("--workers", type=int, default=8, help="gateway worker threads (default 8)")
    ap.add_argument(
        "--processes", type=int, default=0, help="gateway worker processes (default 0: threads only)"
    )
    ap.add_argument(
        "--no-sign", action="store_true", help="encrypt only (to see what signing costs; not the target)"
    )
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    with tempfile.TemporaryDirectory(prefix="gwbench-") as tmp_name:
        tmp = Path(tmp_name)
        store = make_store(tmp / "store.sqlite3")
        password = tmp / "password"
        password.write_bytes(PASSPHRASE + b"\n")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
        flt = subprocess.Popen(
            [sys.executable, "-c", _PASSTHROUGH.format(paths=[str(ROOT / "src"), str(ROOT)])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert flt.stdout is not None and flt.stdin is not None
        filter_port = int(flt.stdout.readline())
        results: dict[tuple[str, int], dict[str, float]] = {}
        with (
            TimedSink() as sink,
            Postfix(
                tmp, content_filter=(HOST, filter_port), relayhost=(HOST, sink.port), relay_domains=()
            ) as pf,
        ):
            flt.stdin.write(f"{pf.host} {pf.reinject_port}\n".encode())
            flt.stdin.flush()
            run = 0
            _run(pf, sink, run, min(20, args.messages), 4, args.size)  # warm-up
            for c in levels:
                run += 1
                results[("pass-through", c)] = _run(pf, sink, run, args.messages, c, args.size)
            flt.stdin.close()
            flt.wait(30)
            extra: tuple[str, ...] = ("--workers", str(args.workers), "--processes", str(args.processes))
            if args.no_sign:
                config = tmp / "gateway.toml"
                config.write_text('[policy]\ninternal_domains = ["example.org"]\nsign = false\n')
                extra += ("--config", str(config))
            gw = GatewayProcess(
                store,
                port=filter_port,
                next_hop=pf.reinject_port,
                spool=tmp / "spool",
                password_file=password,
                extra=extra,
            )
            cpu: float | None = None
            with gw:
                run += 1
                sink.encrypted = 0
                _run(pf, sink, run, min(20, args.messages), 4, args.size)  # warm-up: keys, caches
                assert gw.proc is not None
                before = _cpu_seconds(gw.proc.pid)
                for c in levels:
                    run += 1
                    results[("gateway", c)] = _run(pf, sink, run, args.messages, c, args.size)
                after = _cpu_seconds(gw.proc.pid)
                if before is not None and after is not None:
                    cpu = (after - before) / (args.messages * len(levels))
            gw_messages = args.messages * len(levels) + min(20, args.messages)
            if sink.encrypted != gw_messages:
                raise SystemExit(f"only {sink.encrypted} of {gw_messages} gateway messages arrived encrypted")

    print(
        f"gateway ({'encrypt only' if args.no_sign else 'sign + encrypt'}; {args.workers} threads, {args.processes} processes) vs pass-through, "
        f"same Postfix, {args.messages} messages of ~{args.size // 1024} KiB, {os.cpu_count()} CPUs"
    )
    print(f"{'concurrency':>11}  {'filter':<13} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for c in levels:
        for kind in ("pass-through", "gateway"):
            r = results[(kind, c)]
            print(f"{c:>11}  {kind:<13} {r['rate']:8.1f} {r['p50']:8.1f} {r['p99']:8.1f}")
        ratio = results[("gateway", c)]["rate"] / results[("pass-through", c)]["rate"]
        verdict = "ok" if ratio >= 0.5 else "FAIL (target >= 0.5x)"
        print(f"{c:>11}  ratio gateway/pass-through: {ratio:.2f}x  {verdict}")
    if cpu is not None:
        print(f"gateway process CPU: {cpu * 1000:.1f} ms per message")


if __name__ == "__main__":
    main()
