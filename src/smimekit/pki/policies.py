"""The certificate policy inputs of RFC 5280 path validation (§6.1.1 c, e, f, g)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from smimekit.errors import PkiError

__all__ = ["ANY_POLICY", "PolicyRequirements"]

#: anyPolicy (RFC 5280 §4.2.1.4)
ANY_POLICY = "2.5.29.32.0"

_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


@dataclass(frozen=True)
class PolicyRequirements:
    """What the relying party asks of certificate policies; the defaults accept any policy or none.

    ``acceptable`` is the user-initial-policy-set (dotted OIDs; ``ANY_POLICY`` accepts all).
    ``explicit`` (initial-explicit-policy) requires the path to end with an acceptable policy;
    ``inhibit_mapping`` forbids policy mapping; ``inhibit_any`` stops anyPolicy from matching.
    Raises PkiError for a malformed OID.
    """

    acceptable: frozenset[str] = field(default_factory=lambda: frozenset({ANY_POLICY}))
    explicit: bool = False
    inhibit_mapping: bool = False
    inhibit_any: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.acceptable, str) or not self.acceptable:
            raise PkiError("acceptable must be a non-empty set of policy OIDs")
        object.__setattr__(self, "acceptable", frozenset(self.acceptable))
        for oid in self.acceptable:
            if not isinstance(oid, str) or not _OID.match(oid):
                raise PkiError(f"{oid!r} is not a dotted policy OID")
