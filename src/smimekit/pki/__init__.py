"""Path validation, the S/MIME certificate profile and revocation checking of data handed in. Pure.

Time, trust anchors, intermediates, CRLs and OCSP responses are parameters; nothing is read from the clock, the disk or
the network. RFC 5280 path validation is done by pyhanko-certvalidator (see ``smimekit.pki._engine``);
the S/MIME profile (RFC 8550) on top of it here.
"""

from smimekit.pki.addresses import certificate_email_addresses, email_matches
from smimekit.pki.policies import ANY_POLICY, PolicyRequirements
from smimekit.pki.profile import KeyPurpose, check_recipient_certificate
from smimekit.pki.result import (
    CertificateRevocation,
    PathFailure,
    PathResult,
    RevocationMode,
    RevocationStatus,
    SignerTrust,
)
from smimekit.pki.revocation import (
    OCSP_TIME_TOLERANCE,
    RevocationData,
    RevocationFetcher,
    ocsp_response_problem,
)
from smimekit.pki.validate import SIGNING_TIME_TOLERANCE, validate_path, validate_signer

__all__ = [
    "ANY_POLICY",
    "OCSP_TIME_TOLERANCE",
    "SIGNING_TIME_TOLERANCE",
    "CertificateRevocation",
    "KeyPurpose",
    "PathFailure",
    "PathResult",
    "PolicyRequirements",
    "RevocationData",
    "RevocationFetcher",
    "RevocationMode",
    "RevocationStatus",
    "SignerTrust",
    "certificate_email_addresses",
    "check_recipient_certificate",
    "email_matches",
    "ocsp_response_problem",
    "validate_path",
    "validate_signer",
]
