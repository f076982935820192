"""A small certificate authority for S/MIME: root and intermediate CAs, mailbox-validated certificates
following the CA/Browser Forum S/MIME Baseline Requirements, CRLs, OCSP responses, and a linter.

Pure: time, keys and revocation state are parameters; the store and the network belong to the callers
(``smimekit ca`` in :mod:`smimekit.cli.ca_cmds` and :mod:`smimekit.cli.ca_ocsp`, the responder in
:mod:`smimekit.net.ocsp_serve`).
"""

from smimekit.ca.bundle import certifiable_key, issuer_key, pkcs12_bundle
from smimekit.ca.describe import CertificateInfo, describe_certificate, describe_key
from smimekit.ca.issue import (
    CaSigner,
    Endpoints,
    chain_of,
    create_ca,
    default_usage,
    generate_key,
    issue_certificate,
    issue_ocsp_responder,
    load_csr,
    mailbox_names,
    random_serial,
)
from smimekit.ca.lint import CertificateKind, Finding, LintReport, Severity, lint_certificate
from smimekit.ca.profile import (
    MAX_SUBSCRIBER_VALIDITY,
    POLICY_MAILBOX_MULTIPURPOSE,
    POLICY_MAILBOX_STRICT,
    Generation,
    KeyType,
    Usage,
)
from smimekit.ca.revocation import (
    CertStatus,
    DelegatedSigner,
    OcspResponder,
    Revoked,
    build_crl,
    build_ocsp_response,
    decode_ocsp_get_path,
    delegated_responders,
)

__all__ = [
    "MAX_SUBSCRIBER_VALIDITY",
    "POLICY_MAILBOX_MULTIPURPOSE",
    "POLICY_MAILBOX_STRICT",
    "CaSigner",
    "CertStatus",
    "CertificateInfo",
    "CertificateKind",
    "DelegatedSigner",
    "Endpoints",
    "Finding",
    "Generation",
    "KeyType",
    "LintReport",
    "OcspResponder",
    "Revoked",
    "Severity",
    "Usage",
    "build_crl",
    "build_ocsp_response",
    "certifiable_key",
    "chain_of",
    "create_ca",
    "decode_ocsp_get_path",
    "default_usage",
    "delegated_responders",
    "describe_certificate",
    "describe_key",
    "generate_key",
    "issue_certificate",
    "issue_ocsp_responder",
    "issuer_key",
    "lint_certificate",
    "load_csr",
    "mailbox_names",
    "pkcs12_bundle",
    "random_serial",
]
