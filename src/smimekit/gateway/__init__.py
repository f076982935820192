"""The S/MIME gateway: a Postfix after-queue content filter (see docs/gateway.md).

- :mod:`.policy` — the TOML configuration as frozen :class:`Policy` and :class:`Settings`;
- :mod:`.decide` — the pure decision: message facts + envelope + policy + store knowledge -> copies;
- :mod:`.lookup` — what the store knows: signers, usable and trusted recipient certificates, keys;
- :mod:`.process` — renders the copies with :mod:`smimekit.smime` (sign, encrypt, decrypt, verify);
- :mod:`.revocation` — CRLs and OCSP fetched online for certificate paths, within a time budget;
- :mod:`.server` — the aiosmtpd adapter: spool, thread pool, forward to the next hop, SMTP replies;
- :mod:`.spool`, :mod:`.log` — private spool files, the delivery journal, one JSON log line per message.
"""

from smimekit.gateway.decide import (
    Copy,
    Decision,
    Direction,
    Envelope,
    Knowledge,
    MessageFacts,
    Verdict,
    decide,
)
from smimekit.gateway.policy import (
    EncryptMode,
    MissingCertificate,
    Policy,
    Settings,
    TagAction,
    load_config,
    parse_config,
)

__all__ = [
    "Copy",
    "Decision",
    "Direction",
    "EncryptMode",
    "Envelope",
    "Knowledge",
    "MessageFacts",
    "MissingCertificate",
    "Policy",
    "Settings",
    "TagAction",
    "Verdict",
    "decide",
    "load_config",
    "parse_config",
]
