"""Running ``smimekit gateway run`` as a separate process (to send it signals, or kill it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import smimekit

HOST = "127.0.0.1"
_SRC = Path(smimekit.__file__).resolve().parent.parent
_ROOT = _SRC.parent
_MAIN = "import sys; from smimekit.cli.main import main; sys.exit(main())"


def wait_listening(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"the gateway exited with {proc.returncode}: {err}")
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {HOST}:{port} after {timeout} s")


class GatewayProcess:
    """``smimekit --store STORE gateway run --listen ... --next-hop ... --internal-domain example.org``."""

    def __init__(
        self,
        store: Path,
        *,
        port: int,
        next_hop: int,
        spool: Path,
        password_file: Path | None,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.args = [
            sys.executable,
            "-c",
            _MAIN,
            "--store",
            str(store),
            "gateway",
            "run",
            "--listen",
            f"{HOST}:{port}",
            "--next-hop",
            f"{HOST}:{next_hop}",
            "--internal-domain",
            "example.org",
            "--spool-dir",
            str(spool),
            "--authserv-id",
            "gw.example.org",
            *(("--password-file", str(password_file)) if password_file else ()),
            *extra,
        ]
        self.port = port
        self.log = spool.parent / f"gateway-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> GatewayProcess:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(_SRC), str(_ROOT)]))
        env.pop("SMIMEKIT_PASSWORD", None)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the gateway exited with {self.proc.returncode}: {self.log.read_text()}"
                )
            with socket.socket() as s:
                if s.connect_ex((HOST, self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise AssertionError("the gateway did not start listening")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")
