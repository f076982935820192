"""The shape of the house: a curated public API, and a pure core that touches no network or database."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import textwrap
import types

import smimekit
import smimekit.errors


def test_all_names_exist_and_are_complete() -> None:
    for name in smimekit.__all__:
        assert hasattr(smimekit, name), name
    public = {
        n
        for n, v in vars(smimekit).items()
        if not n.startswith("_")
        and n not in {"annotations", "version"}
        and not isinstance(v, types.ModuleType)
    }
    public -= {"PackageNotFoundError", "errors"}
    assert public <= set(smimekit.__all__), public - set(smimekit.__all__)


def test_every_error_derives_from_the_root() -> None:
    for obj in vars(smimekit.errors).values():
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, smimekit.SmimekitError), obj


def test_mime_all_is_complete() -> None:
    mime = importlib.import_module("smimekit.mime")
    for name in mime.__all__:
        assert hasattr(mime, name), name


def _core_packages() -> list[str]:
    names = ["smimekit.mime"]
    for sub in ("cms", "pki", "ca"):
        if importlib.util.find_spec(f"smimekit.{sub}") is not None:
            names.append(f"smimekit.{sub}")
    out = []
    for name in names:
        pkg = importlib.import_module(name)
        out.append(name)
        for info in pkgutil.walk_packages(pkg.__path__, name + "."):
            out.append(info.name)
    return out


def test_core_imports_with_network_and_database_blocked() -> None:
    """mime, cms and pki import no network, database or process module, and hold no reference to one."""
    code = textwrap.dedent(
        f"""
        import sys, types
        for blocked in ("asyncio", "sqlite3", "http.client", "urllib.request", "smtplib", "imaplib",
                        "poplib", "aiosmtpd", "aiosmtplib", "psycopg", "ldap3"):
            sys.modules[blocked] = None
        import importlib
        bad = []
        for name in {_core_packages()!r}:
            mod = importlib.import_module(name)
            for attr, val in vars(mod).items():
                if isinstance(val, types.ModuleType) and val.__name__ in (
                        "socket", "ssl", "subprocess", "sqlite3", "asyncio", "selectors"):
                    bad.append(f"{{name}}.{{attr}}")
        print("ok" if not bad else bad)
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout + res.stderr
