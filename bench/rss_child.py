"""One large-message run in a fresh process, so that its peak RSS is its own.

    python3 bench/rss_child.py smimekit|stdlib PATH FILENAME

Parses the file at PATH, walks it, streams (smimekit) or decodes (stdlib) every leaf through SHA-256 and
prints one JSON line: the attachment called FILENAME's digest, the times and the peak RSS (``VmHWM``)
after the imports and at the end. Imports stay minimal so that the baseline is the interpreter's.
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
import time


def _maxrss_kib() -> int:
    """Peak RSS of this process in KiB.

    Linux's ``VmHWM`` belongs to this process image alone; ``ru_maxrss`` is not used where VmHWM exists
    because exec() carries over the high-water mark of the (v)forking parent, here the benchmark itself.
    """
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS


def run_smimekit(path: str, filename: str) -> dict[str, object]:
    from smimekit.mime import parse_file

    base = _maxrss_kib()
    t0 = time.perf_counter()
    digest = None
    with parse_file(path) as msg:
        msg.headers.get("subject")
        leaves = [e for e in msg.walk() if not e.is_multipart() and e.message is None]
        t1 = time.perf_counter()
        for e in leaves:
            h = hashlib.sha256()
            with e.decoded_stream() as stream:
                while chunk := stream.read(1 << 20):
                    h.update(chunk)
            if e.filename == filename:
                digest = h.hexdigest()
    t2 = time.perf_counter()
    return {"leaves": len(leaves), "sha256": digest, "parse_s": t1 - t0, "total_s": t2 - t0, "base_kib": base}


def run_stdlib(path: str, filename: str) -> dict[str, object]:
    import email
    import email.policy

    base = _maxrss_kib()
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    msg["subject"]  # decoding the header is part of the work
    leaves = [p for p in msg.walk() if not p.is_multipart()]
    t1 = time.perf_counter()
    digest = None
    for part in leaves:
        payload = part.get_payload(decode=True)
        h = hashlib.sha256(payload)
        if part.get_filename() == filename:
            digest = h.hexdigest()
        del payload
    t2 = time.perf_counter()
    return {"leaves": len(leaves), "sha256": digest, "parse_s": t1 - t0, "total_s": t2 - t0, "base_kib": base}


def main() -> None:
    which, path, filename = sys.argv[1:4]
    result = (run_smimekit if which == "smimekit" else run_stdlib)(path, filename)
    result["peak_kib"] = _maxrss_kib()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
