"""Path validation, the S/MIME certificate profile and revocation checking of data handed in. Pure.

Time, trust anchors, intermediates and CRLs are parameters; nothing is read from the clock, the disk or
the network. RFC 5280 path validation is done by pyhanko-certvalidator (see ``smimekit.pki._engine``);
the S/MIME profile (RFC 8550) on top of it here.
"""

from smimekit.pki.addresses import certificate_email_addresses, email_matches
from smimekit.pki.policies import ANY_POLICY, PolicyRequirements
from smimekit.pki.profile import KeyPurpose, check_recipient_certificate
from smimekit.pki.result import PathFailure, PathResult, SignerTrust
from smimekit.pki.validate import SIGNING_TIME_TOLERANCE, validate_path, validate_signer

__all__ = [
    "ANY_POLICY",
    "SIGNING_TIME_TOLERANCE",
    "KeyPurpose",
    "PathFailure",
    "PathResult",
    "PolicyRequirements",
    "SignerTrust",
    "certificate_email_addresses",
    "check_recipient_certificate",
    "email_matches",
    "validate_path",
    "validate_signer",
]
