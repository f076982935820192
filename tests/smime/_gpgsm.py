"""A throw-away GnuPG home for driving the real ``gpgsm`` 2.2 from tests: offline, without prompts.

Every call passes ``--homedir`` (and ``GNUPGHOME``) so that nothing ever reads or creates ``~/.gnupg``;
``disable-dirmngr`` keeps gpgsm off the network (no CRL, OCSP or LDAP look-up, no dirmngr process);
``--faked-system-time`` makes certificate validity independent of the wall clock. Keys are imported from a
legacy PKCS#12 (3DES + SHA-1 MAC), the only kind gpgsm 2.2 reads (and that with bugs of its own, see
:meth:`GpgsmHome.import_identity`), and unlocked through loopback pinentry with the passphrase on stdin, by
a gpg-agent that :class:`GpgsmHome` starts and ends itself.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.testpki import Identity

TIMEOUT = 30  # seconds for any one gpgsm call; they take milliseconds when all is well
ATTEMPTS = 6  # PKCS#12 imports tried with fresh salts (see GpgsmHome.import_identity)

GPGSM_CONF = b"""\
# offline: no dirmngr, so no CRL, OCSP or LDAP look-ups and no network at all
disable-dirmngr
disable-crl-checks
disable-trusted-cert-crl-check
disable-ocsp
# do not seed a new keybox with the distribution's common certificates
no-common-certs-import
"""
GPG_AGENT_CONF = b"""\
allow-loopback-pinentry
disable-scdaemon
# the agent unprotects a key afresh for every use; its calibrated KDF costs ~0.3 s each time, this ~1 ms
s2k-count 65536
"""


def missing() -> list[str]:
    """The GnuPG programs these tests need that are not on PATH (gpg-agent holds the keys: the Debian
    package gpgsm only recommends it)."""
    return [tool for tool in ("gpgsm", "gpg-agent", "gpgconf") if shutil.which(tool) is None]


def version() -> tuple[int, ...]:
    """gpgsm's version, such as ``(2, 2, 40)``."""
    out = subprocess.run(["gpgsm", "--version"], capture_output=True, timeout=TIMEOUT, check=True).stdout
    found = re.match(rb"gpgsm \(GnuPG\) (\d+)\.(\d+)\.(\d+)", out)
    assert found, out[:200]
    return tuple(int(n) for n in found.groups())


def legacy_pkcs12(identity: Identity, password: bytes, *, name: bytes = b"key") -> bytes:
    """``identity``'s key, certificate and chain as PKCS#12 in the legacy format gpgsm 2.2 imports:
    PBE-SHA1-3DES for key and certificates, an HMAC-SHA1 MAC."""
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())
        .build(password)
    )
    return pkcs12.serialize_key_and_certificates(
        name, identity.key, identity.cert, list(identity.chain) or None, encryption
    )


def sha1_fingerprint(cert: x509.Certificate) -> str:
    """The upper-case hex SHA-1 fingerprint by which gpgsm names a certificate."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()


@dataclass(frozen=True)
class Run:
    """One gpgsm call: its exit code, its ``[GNUPG:]`` status lines (split into words), the other lines of
    its stdout (listings) and its stderr."""

    args: tuple[str, ...]
    returncode: int
    status: tuple[tuple[str, ...], ...]
    output: tuple[str, ...]
    stderr: str

    def keywords(self) -> list[str]:
        return [line[0] for line in self.status]

    def get(self, keyword: str) -> tuple[str, ...] | None:
        """The arguments of the first status line ``keyword``, or None."""
        return next((line[1:] for line in self.status if line[0] == keyword), None)

    def colons(self) -> dict[str, tuple[str, str]]:
        """From a ``--with-colons`` listing: each certificate's fingerprint -> (validity, issuer's
        fingerprint)."""
        found: dict[str, tuple[str, str]] = {}
        validity = ""
        for line in self.output:
            fields = line.split(":")
            if fields[0] == "crt":
                validity = fields[1]
            elif fields[0] == "fpr":
                found[fields[9]] = (validity, fields[12])
        return found

    def __str__(self) -> str:
        lines = [" ".join(line) for line in self.status]
        return f"gpgsm {' '.join(self.args)} -> exit {self.returncode}\n" + "\n".join([*lines, self.stderr])


class GpgsmHome:
    """A private GNUPGHOME (mode 0700) set up for offline, prompt-free gpgsm runs.

    The first :meth:`run` starts a gpg-agent and asks it for its process id; gpgsm runs with
    ``--no-autostart`` so that it never spawns another, and :meth:`close` ends that agent by its id.
    (``gpgconf --kill all`` hung now and then for good, its connection to the agent dead-locked, leaving the
    agent behind.)
    """

    def __init__(self, home: Path, *, passphrase: bytes, faked_time: dt.datetime) -> None:
        self.home = home
        self.passphrase = passphrase
        self.faked_time = faked_time
        self._agent_pid: int | None = None
        home.mkdir(mode=0o700, parents=True)
        home.chmod(0o700)  # mkdir's mode is filtered by the umask; GnuPG warns about looser modes
        (home / "gpgsm.conf").write_bytes(GPGSM_CONF)
        (home / "gpg-agent.conf").write_bytes(GPG_AGENT_CONF)
        self.env = {**os.environ, "GNUPGHOME": str(home), "LC_ALL": "C", "LANGUAGE": "C"}

    def run(self, *args: str | Path, secret: bool = False, check: bool = True) -> Run:
        """Run ``gpgsm --batch --status-fd 1 ARGS``; with ``secret``, feed the passphrase through loopback
        pinentry on stdin (so data must come from files). ``check`` asserts exit code 0."""
        self._start_agent()
        words = [str(a) for a in args]
        stamp = self.faked_time.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S")
        command = ["gpgsm", "--homedir", str(self.home), "--batch", "--no-autostart", "--status-fd", "1"]
        command += ["--faked-system-time", stamp]
        if secret:
            command += ["--pinentry-mode", "loopback", "--passphrase-fd", "0"]
        proc = subprocess.run(
            [*command, *words],
            input=self.passphrase + b"\n" if secret else b"",
            capture_output=True,
            cwd=self.home,
            env=self.env,
            timeout=TIMEOUT,
            check=False,
        )
        lines = proc.stdout.decode("utf-8", "replace").splitlines()
        status = tuple(tuple(line.split()[1:]) for line in lines if line.startswith("[GNUPG:] "))
        output = tuple(line for line in lines if not line.startswith("[GNUPG:] "))
        result = Run(tuple(words), proc.returncode, status, output, proc.stderr.decode("utf-8", "replace"))
        if check:
            assert result.returncode == 0, str(result)
        return result

    def _start_agent(self) -> None:
        if self._agent_pid is not None:
            return
        # the agent binds its socket before it forks and its first process exits: ready when this returns
        # (no pipes: the daemon would hold them open)
        subprocess.run(
            ["gpg-agent", "--homedir", str(self.home), "--daemon"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
            timeout=TIMEOUT,
            check=True,
        )
        self._agent_pid = int(self._ask_agent(b"GETINFO pid"))

    def _ask_agent(self, command: bytes) -> bytes:
        """Send one Assuan command to the agent and return its data line."""
        listed = subprocess.run(
            ["gpgconf", "--homedir", str(self.home), "--list-dirs", "agent-socket"],
            capture_output=True,
            env=self.env,
            timeout=TIMEOUT,
            check=True,
        )
        data = b""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(TIMEOUT)
            conn.connect(listed.stdout.decode().strip())
            with conn.makefile("rwb") as f:
                assert f.readline().startswith(b"OK"), "no greeting from gpg-agent"
                f.write(command + b"\n")
                f.flush()
                while not (line := f.readline()).startswith(b"OK"):
                    assert line.startswith(b"D "), f"gpg-agent answered {line!r} to {command!r}"
                    data += line[2:].rstrip(b"\n")
                f.write(b"BYE\n")
                f.flush()
        return data

    def import_certificates(self, pem: bytes, path: Path) -> Run:
        """Import the certificates of a PEM bundle (written to ``path``)."""
        path.write_bytes(pem)
        return self.run("--import", path)

    def import_identity(self, identity: Identity, path: Path) -> Run:
        """Import ``identity``'s key and certificates as a legacy PKCS#12 (written to ``path``); the agent
        stores the key under the same passphrase.

        gpgsm 2.2's PKCS#12 key derivation (minip12 ``string_to_key``) has two bugs that we step around:
        it writes the adjusted I blocks of RFC 7292 B.2 back without their leading zero bytes, so about one
        PKCS#12 in 64 (whichever salts lead to such a block) is refused with "error parsing or decrypting
        the PKCS#12 file" - we then make a fresh one (fresh salts) and try again; and it fills the password
        block of I with 64 bytes only, so passphrases of 32 characters or more never work.
        """
        assert len(self.passphrase) < 32, "gpgsm 2.2 cannot import PKCS#12 with a passphrase this long"
        for _ in range(ATTEMPTS):
            path.write_bytes(legacy_pkcs12(identity, self.passphrase))
            run = self.run("--import", path, secret=True, check=False)
            if run.returncode == 0 or "error parsing or decrypting the PKCS#12 file" not in run.stderr:
                break
        assert run.returncode == 0, str(run)
        return run

    def trust(self, root: x509.Certificate) -> None:
        """Mark ``root`` as a trusted S/MIME root (trustlist.txt, flag ``S``). The agent reads the file once,
        so call this before the first :meth:`run`."""
        assert self._agent_pid is None, "trust() after the agent has started"
        colons = ":".join(re.findall("..", sha1_fingerprint(root)))
        with (self.home / "trustlist.txt").open("a", encoding="ascii") as f:
            f.write(f"{colons} S\n")

    def secret_keys(self) -> set[str]:
        """The fingerprints of the certificates whose private key the agent holds."""
        return set(self.run("--with-colons", "--list-secret-keys").colons())

    def __enter__(self) -> GpgsmHome:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the gpg-agent: SIGTERM, which it obeys at once when idle (a third one forces it out even with a
        connection open), SIGKILL as the last resort."""
        pid, self._agent_pid = self._agent_pid, None
        if pid is None:
            return
        for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 3
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            if not _alive(pid):
                return
        raise AssertionError(f"gpg-agent {pid} outlived SIGKILL")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie waiting for its parent, init, to reap it does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: kill() said it is there
    return stat.rpartition(")")[2].split()[0] != "Z"
