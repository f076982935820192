"""``smimekit cert``: look at certificate files: ``show`` what they say, ``lint`` them against the S/MIME BR.

``lint`` exits 0 when no requirement (SHALL) is broken, 1 when one is (or, with ``--fail-on-warning``, when a
recommendation (SHOULD) is not followed either), 2 when the file cannot be read.
"""

from __future__ import annotations

import json
import sys

import click

from ..ca import describe_certificate, lint_certificate
from ..ca.lint import LintReport, Severity
from ._errors import EXIT_NEGATIVE
from ._keys import read_certificates

__all__ = ["cert"]

_FILE = click.Path(dir_okay=False, allow_dash=True)


@click.group("cert")
def cert() -> None:
    """Show certificates, or lint them against the CA/Browser Forum S/MIME Baseline Requirements."""


def _label(path: str, index: int, count: int) -> str:
    name = "stdin" if path == "-" else path
    return f"{name} #{index + 1}" if count > 1 else name


@cert.command("lint")
@click.argument("file", type=_FILE)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
@click.option(
    "--fail-on-warning", is_flag=True, help="Exit 1 for an ignored SHOULD too, not only for a broken SHALL."
)
def lint(file: str, as_json: bool, fail_on_warning: bool) -> None:
    """List every deviation of the certificates in FILE from the S/MIME BR profile, one line each."""
    certificates = read_certificates(file)
    reports: list[LintReport] = [lint_certificate(c) for c in certificates]
    failed = any(r.errors or (fail_on_warning and r.warnings) for r in reports)
    if as_json:
        document = {
            "ok": not failed,
            "certificates": [
                {
                    "subject": info.subject,
                    "sha256": info.sha256,
                    "kind": r.kind.value,
                    "validation": r.validation,
                    "generation": r.generation,
                    "findings": [
                        {"rule": f.rule, "message": f.message, "severity": f.severity.value}
                        for f in r.findings
                    ],
                }
                for info, r in zip(map(describe_certificate, certificates), reports, strict=True)
            ],
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        for index, report in enumerate(reports):
            prefix = f"{_label(file, index, len(reports))}: " if len(reports) > 1 else ""
            for finding in report.findings:
                suffix = " (warning)" if finding.severity is Severity.WARNING else ""
                click.echo(f"{prefix}{finding}{suffix}")
            if not report.findings:
                profile = " ".join(
                    p
                    for p in (report.validation and f"{report.validation}-validated", report.generation)
                    if p
                )
                kind = f"{report.kind.value} certificate" + (f", {profile}" if profile else "")
                click.echo(f"{prefix}no deviation from the S/MIME BR ({kind})", err=True)
    if failed:
        sys.exit(EXIT_NEGATIVE)


@cert.command("show")
@click.argument("file", type=_FILE)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def show(file: str, as_json: bool) -> None:
    """Subject, issuer, serial, validity, addresses, key, key usage, EKU, policies and fingerprints."""
    infos = [describe_certificate(c) for c in read_certificates(file)]
    if as_json:
        click.echo(json.dumps({"certificates": [i.as_json() for i in infos]}, indent=2, ensure_ascii=False))
        return
    for index, info in enumerate(infos):
        if index:
            click.echo("")
        if len(infos) > 1:
            click.echo(f"Certificate {index + 1} of {len(infos)}")
        kind = "CA" + (", self-signed" if info.self_signed else "") if info.is_ca else "end entity"
        rows = [
            ("Subject", info.subject),
            ("Issuer", info.issuer),
            ("Serial", info.serial),
            ("Valid from", f"{info.not_before:%Y-%m-%d %H:%M:%S} UTC"),
            ("Valid until", f"{info.not_after:%Y-%m-%d %H:%M:%S} UTC"),
            ("Kind", kind),
            ("Addresses", ", ".join(info.addresses) or "(none)"),
            ("Key", info.key),
            (
                "Key usage",
                "(any: no keyUsage)" if info.key_usage is None else ", ".join(info.key_usage) or "(none)",
            ),
            ("Extended key usage", ", ".join(info.extended_key_usage) or "(any: no extKeyUsage)"),
            ("Policies", ", ".join(info.policies) or "(none)"),
            ("SHA-256", info.sha256),
            ("SHA-1", info.sha1),
        ]
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            click.echo(f"{label + ':':<{width + 1}} {_safe(value)}")


def _safe(text: str) -> str:
    """Control characters of a hostile certificate escaped, so they cannot move the cursor."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
