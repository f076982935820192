"""Doing what :func:`~smimekit.gateway.decide.decide` said: one message from the spool to processed copies.

:class:`Processor` reads a spooled message, asks the store what it knows
(:func:`~smimekit.gateway.lookup.gather`), decides, and renders each copy with :mod:`smimekit.smime`:
signed, encrypted, decrypted, verified, with our Authentication-Results field
(:mod:`smimekit.gateway.results`) and without forged ones; in memory for a small message, in private
files otherwise. It never talks SMTP: the server forwards the rendered copies.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from smimekit import mime, smime
from smimekit.errors import CryptoError, DecryptionError, MimeError, RecipientNotFoundError
from smimekit.gateway.decide import Copy, Decision, Envelope, MessageFacts, decide
from smimekit.gateway.lookup import KeyCache, Material, SignerCache, TrustCache, gather
from smimekit.gateway.policy import Policy, normalize_address
from smimekit.gateway.results import AUTH_RESULTS, authserv_id_of, claims, result_field
from smimekit.gateway.revocation import BoundedFetcher, current_crls
from smimekit.mime import Entity, Message, parse_file
from smimekit.mime.rfc2047 import fold_header
from smimekit.pki import RevocationFetcher, RevocationMode
from smimekit.smime import VerificationReport
from smimekit.store import Store, Trust

__all__ = ["AUTH_RESULTS", "Processed", "Processor", "authserv_id_of", "facts_of", "result_field"]

#: Copies of messages up to this size are rendered in memory; larger ones in private files.
SMALL_MESSAGE = 1 << 20


def facts_of(message: Entity) -> MessageFacts:
    """The :class:`MessageFacts` of ``message`` (its top level only)."""
    kind = smime.kind_of(message)
    return MessageFacts(
        subject=message.headers.get("Subject"),
        signed=kind is not None and kind.signed,
        encrypted=kind is not None and kind.encrypted,
    )


# -------------------------------------------------------------------------------- rendering copies


def _write_rewritten(
    message: Entity,
    out: IO[bytes],
    *,
    authserv_id: str,
    prepend: tuple[tuple[str, str], ...] = (),
    subject: str | None = None,
) -> None:
    """Write ``message`` with forged result fields dropped, ``prepend`` fields added on top and (when
    given) a new Subject, every other byte as it was."""
    eol = b"\r\n"
    fields = list(message.headers)
    if fields and fields[0].raw.endswith(b"\n") and not fields[0].raw.endswith(b"\r\n"):
        eol = b"\n"
    for name, value in prepend:
        out.write(fold_header(name, value, eol=eol))
    for h in fields:
        if h.lname == AUTH_RESULTS.lower() and claims(h.unfolded_ascii(), authserv_id):
            continue  # claims to be ours but came from outside: forged
        if subject is not None and h.lname == "subject":
            out.write(fold_header("Subject", subject, eol=eol))
            subject = None
            continue
        out.write(h.raw if h.raw.endswith(b"\n") else h.raw + eol)
    out.write(message.separator or eol)
    for piece in message.iter_raw_body():
        out.write(piece)


@dataclass
class Processed:
    """The outcome of :meth:`Processor.process`: the decision and, for DELIVER, one rendered file per
    copy (close them with :meth:`close`)."""

    decision: Decision
    envelope: Envelope
    queue_id: str | None
    outputs: list[tuple[Copy, IO[bytes]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def close(self) -> None:
        for _, f in self.outputs:
            with contextlib.suppress(OSError):
                f.close()
        self.outputs.clear()


class Processor:
    """Processes spooled messages under one policy; safe to use from several threads (each thread gets
    its own store connection from ``open_store``).

    Revocation counts as ``policy.revocation`` says; the data comes from the store's current CRLs and from
    ``fetcher`` (default: a :class:`~smimekit.gateway.revocation.BoundedFetcher` on ``open_store``, which
    fetches online within a time budget; none when the policy's revocation is OFF).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        open_store: Callable[[], Store],
        passphrase: bytes | None,
        new_output: Callable[[], IO[bytes]],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        harvest: Callable[[Store, VerificationReport, dt.datetime], object] | None = None,
        fetcher: RevocationFetcher | None = None,
    ) -> None:
        self.policy = policy
        self._open_store = open_store
        self._passphrase = passphrase
        self._new_output = new_output
        self._clock = clock
        self._harvest = harvest
        self._local = threading.local()
        self._stores: list[Store] = []
        self._lock = threading.Lock()
        self.keys = KeyCache()
        self.trust = TrustCache()
        self.signers = SignerCache()
        self._own_fetcher: BoundedFetcher | None = None
        if fetcher is None and policy.revocation is not RevocationMode.OFF:
            fetcher = self._own_fetcher = BoundedFetcher(open_store)
        self.fetcher = fetcher if policy.revocation is not RevocationMode.OFF else None

    def _store(self) -> Store:
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = self._open_store()
            self._local.store = store
            with self._lock:
                self._stores.append(store)
        return store

    def drop_store(self) -> None:
        """Forget this thread's store connection (after an error, the next message opens a new one)."""
        store: Store | None = getattr(self._local, "store", None)
        self._local.store = None
        if store is not None:
            with self._lock:
                if store in self._stores:
                    self._stores.remove(store)
            with contextlib.suppress(Exception):
                store.close()

    def close(self) -> None:
        if self._own_fetcher is not None:
            self._own_fetcher.close()
        with self._lock:
            stores, self._stores = self._stores, []
        for s in stores:
            with contextlib.suppress(Exception):
                s.close()

    def process(self, path: Path, envelope: Envelope, *, queue_id: str | None = None) -> Processed:
        """Decide on the message in ``path`` and render its copies.

        Raises StoreError when the store cannot answer, the errors of smimekit.smime when a copy cannot
        be signed or encrypted, MimeError for a message past the parser's limits, OSError for the disk.
        """
        now = self._clock()
        with parse_file(path) as message:
            facts = facts_of(message)
            try:
                store = self._store()
                knowledge, material = gather(
                    store,
                    envelope,
                    facts,
                    self.policy,
                    now=now,
                    passphrase=self._passphrase,
                    keys=self.keys,
                    trust=self.trust,
                    signers=self.signers,
                    fetcher=self.fetcher,
                )
            except BaseException:
                self.drop_store()
                raise
            decision = decide(facts, envelope, self.policy, knowledge)
            done = Processed(decision, envelope, queue_id)
            if decision.copies and decision.verdict.value == "deliver":
                try:
                    self._render_all(path, message, decision, material, store, now, done)
                except BaseException:
                    done.close()
                    raise
        return done

    def _buffer(self, small: bool) -> IO[bytes]:
        """Where a rendered message goes: memory for a small message, a private file otherwise."""
        return io.BytesIO() if small else self._new_output()

    def _render_all(
        self,
        path: Path,
        message: Message,
        decision: Decision,
        material: Material,
        store: Store,
        now: dt.datetime,
        done: Processed,
    ) -> None:
        small = path.stat().st_size <= SMALL_MESSAGE
        signed_cache: dict[bool, IO[bytes]] = {}
        try:
            for copy in decision.copies:
                out = self._buffer(small)
                try:
                    self._render(message, copy, material, store, now, out, signed_cache, done.notes, small)
                    out.flush()
                    out.seek(0)
                except BaseException:
                    out.close()
                    raise
                done.outputs.append((copy, out))
        finally:
            for f in signed_cache.values():
                f.close()

    @contextlib.contextmanager
    def _rewritten(self, message: Message, small: bool, subject: str | None = None) -> Iterator[Message]:
        """``message`` without forged result fields and with ``subject`` (see :func:`_write_rewritten`);
        the message itself when there is nothing to change."""
        if subject is None and not _forged(message, self.policy.authserv_id):
            yield message
            return
        tmp = self._buffer(small)
        try:
            _write_rewritten(message, tmp, authserv_id=self.policy.authserv_id, subject=subject)
            with _parsed(tmp) as parsed:
                yield parsed
        finally:
            tmp.close()

    def _render(
        self,
        message: Message,
        copy: Copy,
        material: Material,
        store: Store,
        now: dt.datetime,
        out: IO[bytes],
        signed_cache: dict[bool, IO[bytes]],
        notes: list[str],
        small: bool,
    ) -> None:
        policy = self.policy
        if copy.decrypt_for is not None:
            self._render_decrypted(message, copy.decrypt_for, material, store, now, out, notes)
            return
        if copy.annotate:
            if facts_of(message).encrypted:  # no key of these recipients: passed on as it came
                self._annotate(
                    message, store, now, out, decryption="encrypted, no key", notes=notes, unread=True
                )
            else:
                self._annotate(message, store, now, out, decryption="not encrypted", notes=notes)
            return
        if not (copy.sign or copy.encrypt or copy.strip_subject_tag):
            _write_rewritten(message, out, authserv_id=policy.authserv_id)
            return
        subject = None
        if copy.strip_subject_tag and message.headers.get("Subject") is not None:
            subject = policy.without_subject_tag(message.headers["Subject"])
        # the signed message is made once and shared by the encrypted and the clear copy
        key = copy.strip_subject_tag
        if copy.sign and key not in signed_cache:
            assert material.signer is not None
            with self._rewritten(message, small, subject) as clean:
                tmp = self._buffer(small)
                smime.sign_to(
                    tmp,  # type: ignore[arg-type]
                    clean,
                    material.signer,
                    signing_time=now,
                )
                signed_cache[key] = tmp
        if copy.sign:
            with _parsed(signed_cache[key]) as signed:
                self._finish(signed, copy, material, out)
        else:
            with self._rewritten(message, small, subject) as clean:
                self._finish(clean, copy, material, out)

    def _finish(self, content: Message, copy: Copy, material: Material, out: IO[bytes]) -> None:
        if not copy.encrypt:
            content.write_to(out)
            return
        certs = [material.certificates[normalize_address(r)] for r in copy.recipients]
        # fail closed: a copy to encrypt is written encrypted or not at all
        smime.encrypt_to(out, content, list(dict.fromkeys(certs)))  # type: ignore[arg-type]

    def _render_decrypted(
        self,
        message: Message,
        recipient: str,
        material: Material,
        store: Store,
        now: dt.datetime,
        out: IO[bytes],
        notes: list[str],
    ) -> None:
        pairs = material.keys.get(normalize_address(recipient), [])
        for cert, key in pairs:
            try:
                inner, info = smime.decrypt(message, key=key, certificate=cert)
            except (DecryptionError, RecipientNotFoundError):
                continue
            with inner:
                self._annotate(
                    inner, store, now, out, decryption=f"decrypted: {info.cipher.label}", notes=notes
                )
            return
        notes.append(f"could not decrypt for {recipient}")
        self._annotate(
            message,
            store,
            now,
            out,
            decryption=f"encrypted, no key of {recipient} opens it",
            notes=notes,
            unread=True,
        )

    def _annotate(
        self,
        message: Message,
        store: Store,
        now: dt.datetime,
        out: IO[bytes],
        *,
        decryption: str,
        notes: list[str],
        unread: bool = False,
    ) -> None:
        report: VerificationReport | None = None
        error = ""
        if not unread and _has_signature(message):
            try:
                mode = self.policy.revocation
                report = smime.verify(
                    message,
                    now=now,
                    anchors=store.trust_anchors(Trust.EMAIL_SIGNING),
                    # a cached CRL past its nextUpdate would make its certificates untrusted: the fetcher
                    # gets a fresh one instead
                    crls=current_crls(store, now) if mode is not RevocationMode.OFF else (),
                    revocation=mode,
                    fetcher=self.fetcher,
                )
            except (CryptoError, MimeError) as exc:
                error = str(exc)
        if report is not None and self._harvest is not None and self.policy.harvest:
            try:
                self._harvest(store, report, now)
            except Exception as exc:  # harvesting is a bonus: it never costs a delivery
                notes.append(f"harvest failed: {exc}")
        value = result_field(
            self.policy.authserv_id,
            report=report,
            decryption=decryption,
            error=error,
            encrypted_unread=unread,
        )
        _write_rewritten(message, out, authserv_id=self.policy.authserv_id, prepend=((AUTH_RESULTS, value),))


def _forged(message: Entity, authserv_id: str) -> bool:
    """Whether ``message`` carries a result field claiming to be ours."""
    return any(claims(h.unfolded_ascii(), authserv_id) for h in message.headers.fields(AUTH_RESULTS))


def _parsed(buffer: IO[bytes]) -> Message:
    """The message written to ``buffer`` (memory or a private file), parsed."""
    if isinstance(buffer, io.BytesIO):
        return mime.parse(buffer.getvalue())
    buffer.flush()
    return parse_file(buffer.name)


def _has_signature(message: Entity) -> bool:
    """The message, or a part of it, is S/MIME signed (what verify() looks for)."""
    for entity in message.walk():
        kind = smime.kind_of(entity)
        if kind is not None and kind.signed:
            return True
    return False
