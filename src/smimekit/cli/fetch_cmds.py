"""``smimekit fetch``: read a mailbox over IMAP or POP3, open every message, report on each, keep opened
copies in a Maildir.

Thin: :mod:`smimekit.net` speaks the protocols, :mod:`smimekit.smime` opens, the store (through
:mod:`._identity`) gives keys and trust anchors, and the reports are rendered as ``smimekit open`` renders
them (:mod:`._render`). The server password comes from ``--password-file``, then
``$SMIMEKIT_MAIL_PASSWORD``, then a prompt on a terminal (:mod:`._net_options`).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from cryptography import x509

from .. import mime, smime
from ..errors import (
    KeyLoadError,
    LegacyAlgorithmError,
    NetError,
    NotSmimeError,
    RecipientNotFoundError,
    SmimekitError,
    StoreError,
    UsageError,
)
from ..mime import Message
from ..net import imap, pop3
from ..net.imap import FetchedMessage
from ..net.maildir import Maildir
from ..net.tls import MailboxServer, TlsMode, parse_endpoint
from ..store.api import Store, Trust
from ._common import store_option
from ._identity import Key, StoreKeys, harvest_signers, optional_store, store_intermediates, trust_anchors
from ._keys import key_pairs
from ._net_options import connection_options, key_options, server_password, tls_context
from ._render import failures, labelled, make_console, render_layers, safe_text
from ._secrets import PasswordSource
from .crypt_cmds import decryption_pairs
from .smime_cmds import (
    NegativeVerdict,
    Revocation,
    intermediates,
    legacy_error,
    revocation_options,
    trust_options,
)
from .smime_cmds import now as clock

__all__ = ["MAIL_PASSWORD_ENV", "fetch"]

MAIL_PASSWORD_ENV = "SMIMEKIT_MAIL_PASSWORD"


class _Status(enum.Enum):
    """What became of a fetched message."""

    OPENED = "opened"
    """Every layer opened, every signature intact, valid and trusted."""
    NOT_SMIME = "not-smime"
    """A plain message: reported, not a failure."""
    FAILED = "failed"


@dataclass(frozen=True)
class _Outcome:
    """What became of one message of the mailbox."""

    label: str
    status: _Status
    error: str | None = None
    result: smime.OpenResult | None = None
    saved: Path | None = None
    harvested: tuple[str, ...] = ()
    """Fingerprints of the certificates kept in the store from its signatures."""

    @property
    def ok(self) -> bool:
        return self.status is not _Status.FAILED

    def to_dict(self) -> dict[str, Any]:
        report = None
        if self.result is not None:  # the document of 'smimekit open --json'
            report = {"ok": self.result.ok, "harvested": list(self.harvested), **self.result.to_dict()}
        saved = None if self.saved is None else str(self.saved)
        return {
            "message": self.label,
            "status": self.status.value,
            "ok": self.ok,
            "error": self.error,
            "report": report,
            "saved": saved,
        }


@dataclass(frozen=True)
class _Opener:
    """How every fetched message is opened: keys, trust, time, and where opened copies go."""

    pairs: tuple[Key, ...]
    """The decryption keys given as files (the store's are used when there are none)."""
    store: Store | None
    secrets: PasswordSource
    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]
    at: dt.datetime
    legacy: bool
    maildir: Maildir | None
    revocation: dict[str, Any]
    """The revocation keyword arguments of smime.open (see :class:`.smime_cmds.Revocation`)."""
    harvest: bool
    """Keep what verified signatures teach in the store, as ``smimekit open`` does."""

    def keys(self, msg: Message) -> Sequence[Key]:
        if self.pairs or self.store is None:
            return self.pairs
        return StoreKeys(self.store, msg, self.secrets)

    def open(self, fetched: FetchedMessage) -> _Outcome:
        """Open ``fetched``; a problem with the message is its outcome, not an exception. Problems that
        are not the message's (the store, a key's password, writing the Maildir) raise."""
        label = fetched.label
        try:
            msg = mime.parse(fetched.data)
        except SmimekitError as exc:
            return _Outcome(label, _Status.FAILED, str(exc))
        with msg:
            keys: Sequence[Key] = ()
            try:
                keys = self.keys(msg)
                result = smime.open(
                    msg,
                    now=self.at,
                    keys=keys,
                    anchors=self.anchors,
                    intermediates=self.intermediates,
                    legacy_ciphers=self.legacy,
                    legacy_algorithms=self.legacy,
                    **self.revocation,
                )
            except NotSmimeError:  # plain: open() raises SmimeFormatError for what only claims S/MIME
                return _Outcome(label, _Status.NOT_SMIME, saved=self._save([fetched.data]))
            except RecipientNotFoundError as exc:
                return _Outcome(label, _Status.FAILED, self._no_key(exc, keys))
            except LegacyAlgorithmError as exc:
                return _Outcome(label, _Status.FAILED, str(legacy_error(exc)))
            except SmimekitError as exc:
                if isinstance(exc, NetError | StoreError | KeyLoadError):
                    raise
                return _Outcome(label, _Status.FAILED, str(exc))
            with result.inner:
                saved = self._save(result.inner.iter_bytes())
        kept = self._harvest(result)
        if result.ok:
            return _Outcome(label, _Status.OPENED, result=result, saved=saved, harvested=kept)
        why = [f for layer in result.layers if layer.verification for f in failures(layer.verification)]
        return _Outcome(label, _Status.FAILED, "; ".join(why), result=result, saved=saved, harvested=kept)

    def _harvest(self, result: smime.OpenResult) -> tuple[str, ...]:
        if not self.harvest:
            return ()
        reports = [layer.verification for layer in result.layers if layer.verification is not None]
        return tuple(harvest_signers(self.store, reports, self.at))

    def _save(self, pieces: Iterable[bytes]) -> Path | None:
        return self.maildir.deliver(pieces) if self.maildir is not None else None

    def _no_key(self, exc: RecipientNotFoundError, keys: Sequence[Key]) -> str:
        if not self.pairs and self.store is None:
            return "it is encrypted: give your key with --cert and --key, or --p12 (or keep it in the store)"
        if isinstance(keys, StoreKeys) and not len(keys):
            return str(keys.no_key_error())  # names the recipients the message is for
        return str(exc)


def _headline(fetched: FetchedMessage | None, label: str) -> str:
    """``Message UID 17 from Bob <bob@example.org>: Hello`` (POP3: ``Message 3 (UIDL ...) from ...``)."""
    title = f"Message {label.removeprefix('message ')}"
    if fetched is None:
        return title
    try:
        with mime.parse(fetched.data) as msg:
            who = msg.headers.get("From") or "no From"
            subject = msg.headers.get("Subject") or "no subject"
    except SmimekitError:
        return title
    return f"{title} from {who}: {subject}"


def _print(outcome: _Outcome, fetched: FetchedMessage | None) -> None:
    console = make_console()
    console.print(safe_text(_headline(fetched, outcome.label)), style="bold", markup=False)
    if outcome.result is not None:
        render_layers(outcome.result, console)
    if outcome.status is _Status.NOT_SMIME:
        console.print(
            "  not S/MIME: the message is neither signed nor encrypted", style="yellow", markup=False
        )
    elif outcome.status is _Status.FAILED:
        console.print(f"  FAILED: {safe_text(outcome.error or 'unknown')}", style="bold red", markup=False)
    if outcome.harvested:
        n = len(outcome.harvested)
        kept = f"{n} certificate{'s' if n > 1 else ''} and the signer's capabilities kept in the store"
        labelled(console, "  ", "Harvested", kept)
    if outcome.saved is not None:
        console.print(f"  saved as {safe_text(str(outcome.saved))}", markup=False)


class _Run:
    """One fetch: the outcomes so far, printed as they come (text) or all at the end (JSON)."""

    def __init__(self, opener: _Opener, *, as_json: bool) -> None:
        self.opener = opener
        self.as_json = as_json
        self.outcomes: list[_Outcome] = []

    def _record(self, outcome: _Outcome, fetched: FetchedMessage | None) -> bool:
        self.outcomes.append(outcome)
        if not self.as_json:
            _print(outcome, fetched)
        return outcome.ok

    def handle(self, fetch: Callable[[], FetchedMessage], label: str, alive: Callable[[], bool]) -> bool:
        """Fetch and open one message; True when it was handled without failure."""
        try:
            fetched = fetch()
        except NetError as exc:
            if not alive():  # the session is gone: no other message can be read either
                raise
            return self._record(_Outcome(label, _Status.FAILED, exc.reason), None)
        return self._record(self.opener.open(fetched), fetched)

    def finish(self) -> None:
        failed = [o for o in self.outcomes if not o.ok]
        n = len(self.outcomes)
        if self.as_json:
            doc = {"ok": not failed, "messages": [o.to_dict() for o in self.outcomes]}
            click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        else:
            opened = sum(1 for o in self.outcomes if o.status is _Status.OPENED)
            plain = sum(1 for o in self.outcomes if o.status is _Status.NOT_SMIME)
            click.echo(
                f"{n} message{'' if n == 1 else 's'}: {opened} opened, {plain} not S/MIME, {len(failed)} failed"
            )
        if failed:
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise NegativeVerdict(
                f"{len(failed)} of {n} messages failed: {failed[0].label}: {failed[0].error}{more}"
            )


@click.command()
@click.option(
    "--imap", "imap_server", metavar="HOST[:PORT]", help="Read over IMAP (993; 143 with --starttls)."
)
@click.option(
    "--pop3", "pop3_server", metavar="HOST[:PORT]", help="Read over POP3 (995; 110 with --starttls)."
)
@connection_options(MAIL_PASSWORD_ENV, smtp_ports=False)
@click.option("--folder", default="INBOX", show_default=True, help="The IMAP folder to read.")
@click.option(
    "--search",
    "criteria",
    metavar="CRITERIA",
    default="ALL",
    show_default=True,
    help="IMAP SEARCH criteria, e.g. 'UNSEEN FROM \"alice\"'.",
)
@click.option("--uid", "uid_set", metavar="RANGE", help="Only these IMAP UIDs: 42, 1:100, 7:*, 3,5.")
@click.option("--mark-seen", is_flag=True, help="IMAP: set \\Seen on each message opened without failure.")
@click.option("--delete", is_flag=True, help="Delete from the server each message opened without failure.")
@key_options
@trust_options
@revocation_options
@click.option("--legacy", is_flag=True, help="Accept legacy ciphers and SHA-1/1024-bit paths (reported).")
@click.option(
    "--maildir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write each message, opened (decrypted), into this Maildir (created when missing).",
)
@click.option(
    "--no-harvest",
    is_flag=True,
    help="Do not keep the certificates and S/MIME capabilities of verified signers in the store (kept by "
    "default when a store exists, as 'smimekit open' does).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document for all messages.")
@store_option
def fetch(
    imap_server: str | None,
    pop3_server: str | None,
    tls_mode: str | None,
    user: str | None,
    password_file: str | None,
    ca: Path | None,
    unsafe_no_verify: bool,
    timeout: float,
    folder: str,
    criteria: str,
    uid_set: str | None,
    mark_seen: bool,
    delete: bool,
    cert: str | None,
    key: str | None,
    p12: str | None,
    key_password_file: str | None,
    trust: tuple[str, ...],
    chain: tuple[str, ...],
    at: dt.datetime | None,
    crl_files: tuple[str, ...],
    revocation: str,
    legacy: bool,
    maildir: Path | None,
    no_harvest: bool,
    as_json: bool,
) -> None:
    """Read a mailbox over IMAP or POP3, decrypt and verify every message, print a report of each.

    The server's copy is left as it was: IMAP reads with EXAMINE and BODY.PEEK (no \\Seen flag), POP3
    never deletes — unless --mark-seen or --delete ask, and then only for messages opened without
    failure. Keys come from --cert/--key/--p12 or the store, trust anchors from --trust or the store.

    Exit status: 0 when every message was opened (or is not S/MIME); 1 when one failed (the others are
    still read); 2 for a usage, login or connection error.
    """
    if (imap_server is None) == (pop3_server is None):
        raise UsageError("give exactly one of --imap HOST[:PORT] or --pop3 HOST[:PORT]")
    if user is None:
        raise UsageError("give the mailbox's user name with --user")
    starttls = tls_mode == "starttls"
    if imap_server is not None:
        endpoint = parse_endpoint(imap_server, default_port=imap.IMAP_PORT if starttls else imap.IMAPS_PORT)
        criteria = imap.check_criteria(criteria)
        uid_set = None if uid_set is None else imap.check_uid_set(uid_set)
    else:
        if mark_seen or uid_set is not None or criteria != "ALL" or folder != "INBOX":
            raise UsageError("--mark-seen, --uid, --search and --folder are for IMAP, not POP3")
        assert pop3_server is not None
        endpoint = parse_endpoint(pop3_server, default_port=pop3.POP3_PORT if starttls else pop3.POP3S_PORT)
    secrets = PasswordSource(key_password_file)
    pairs = (
        decryption_pairs(key_pairs(cert=cert, key=key, p12=p12, secrets=secrets, cert_required=False))
        if cert or key or p12
        else []
    )
    context = tls_context(ca, unsafe_no_verify, endpoint)
    password = server_password(password_file, MAIL_PASSWORD_ENV, user, endpoint)
    server = MailboxServer(
        endpoint,
        TlsMode.STARTTLS if starttls else TlsMode.IMPLICIT,
        context,
        user=user,
        password=password,
        timeout=timeout,
    )
    with optional_store() as store:
        anchors = trust_anchors(store, Trust.EMAIL_SIGNING, trust)
        given = intermediates(chain)
        when = at or clock()
        opener = _Opener(
            pairs=tuple(pairs),
            store=store,
            secrets=secrets,
            anchors=tuple(anchors),
            intermediates=(*given, *store_intermediates(store)),
            at=when,
            legacy=legacy,
            maildir=Maildir(maildir) if maildir is not None else None,
            revocation=Revocation(revocation, crl_files).library_options(store, at=when),
            harvest=not no_harvest,
        )
        run = _Run(opener, as_json=as_json)
        if imap_server is not None:
            with imap.ImapMailbox(server, folder=folder, writable=mark_seen or delete) as mailbox:
                for uid in mailbox.search(criteria, uids=uid_set):
                    if run.handle(functools.partial(mailbox.fetch, uid), f"UID {uid}", mailbox.alive):
                        if mark_seen:
                            mailbox.mark_seen(uid)
                        if delete:
                            mailbox.delete(uid)
        else:
            with pop3.Pop3Mailbox(server) as maildrop:
                uidls = maildrop.unique_ids()
                for number, size in maildrop.messages():
                    ok = run.handle(
                        functools.partial(maildrop.retrieve, number, size=size, uidl=uidls.get(number)),
                        f"message {number}",
                        maildrop.alive,
                    )
                    if ok and delete:
                        maildrop.delete(number)
    run.finish()
