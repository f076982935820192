"""The store's tables, and the migrations that bring an older store up to date.

One list of migrations serves both backends: ``{blob}`` becomes BLOB (SQLite) or BYTEA (PostgreSQL); every
other type is common to both. Migration *n* turns a version *n-1* store into version *n*; the store
records each in ``schema_version``. Times are microseconds since 1970 UTC (BIGINT), serial numbers
decimal text (they reach 20 octets), names their DER.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "TABLES"]

_V1 = (
    """CREATE TABLE schema_version (
        version INTEGER PRIMARY KEY,
        applied BIGINT NOT NULL
    )""",
    """CREATE TABLE certificates (
        fingerprint TEXT PRIMARY KEY,
        der {blob} NOT NULL,
        subject {blob} NOT NULL,
        issuer {blob} NOT NULL,
        serial TEXT NOT NULL,
        ski {blob},
        not_before BIGINT NOT NULL,
        not_after BIGINT NOT NULL,
        first_email TEXT NOT NULL,
        trust INTEGER NOT NULL DEFAULT 0,
        source TEXT NOT NULL,
        added BIGINT NOT NULL
    )""",
    "CREATE INDEX certificates_subject ON certificates (subject)",
    "CREATE INDEX certificates_issuer_serial ON certificates (issuer, serial)",
    "CREATE INDEX certificates_ski ON certificates (ski)",
    """CREATE TABLE certificate_emails (
        fingerprint TEXT NOT NULL REFERENCES certificates (fingerprint) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        email TEXT NOT NULL,
        PRIMARY KEY (fingerprint, position)
    )""",
    "CREATE INDEX certificate_emails_email ON certificate_emails (email)",
    """CREATE TABLE private_keys (
        fingerprint TEXT PRIMARY KEY REFERENCES certificates (fingerprint) ON DELETE CASCADE,
        encrypted {blob} NOT NULL,
        added BIGINT NOT NULL
    )""",
    """CREATE TABLE crls (
        crl_key TEXT PRIMARY KEY,
        issuer {blob} NOT NULL,
        this_update BIGINT NOT NULL,
        next_update BIGINT,
        der {blob} NOT NULL,
        stored BIGINT NOT NULL
    )""",
    "CREATE INDEX crls_issuer ON crls (issuer)",
    """CREATE TABLE crl_urls (
        url TEXT PRIMARY KEY,
        der {blob} NOT NULL,
        stored BIGINT NOT NULL
    )""",
)

# Version 2: what was learned from signed mail, OCSP responses, and the CA tables of ``smimekit ca``.
_V2 = (
    """CREATE TABLE ocsp_responses (
        fingerprint TEXT PRIMARY KEY,
        der {blob} NOT NULL,
        this_update BIGINT NOT NULL,
        next_update BIGINT,
        stored BIGINT NOT NULL
    )""",
    """CREATE TABLE correspondents (
        email TEXT PRIMARY KEY,
        capabilities TEXT NOT NULL,
        preferred_certificate TEXT,
        updated BIGINT NOT NULL
    )""",
    """CREATE TABLE cas (
        name TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL UNIQUE REFERENCES certificates (fingerprint),
        crl_url TEXT,
        ocsp_url TEXT,
        is_default INTEGER NOT NULL DEFAULT 0,
        crl_number BIGINT NOT NULL DEFAULT 0,
        created BIGINT NOT NULL
    )""",
    """CREATE TABLE issued (
        ca_fingerprint TEXT NOT NULL REFERENCES cas (fingerprint),
        serial TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        email TEXT,
        email_key TEXT,
        not_after BIGINT NOT NULL,
        issued BIGINT NOT NULL,
        revoked_at BIGINT,
        reason TEXT,
        PRIMARY KEY (ca_fingerprint, serial)
    )""",
    "CREATE INDEX issued_email ON issued (ca_fingerprint, email_key)",
)

# Version 3: where relying parties fetch a CA's own certificate (the caIssuers URL of what it issues).
_V3 = ("ALTER TABLE cas ADD COLUMN ca_issuers_url TEXT",)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3)
"""``MIGRATIONS[n - 1]`` makes a version *n* store out of a version *n - 1* one (0: an empty database)."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The version this smimekit writes; a store of a higher version is refused."""

TABLES = frozenset(
    {
        "schema_version",
        "certificates",
        "certificate_emails",
        "private_keys",
        "crls",
        "crl_urls",
        "ocsp_responses",
        "correspondents",
        "cas",
        "issued",
    }
)
