"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed-note envelopes, Ed25519 keys.

Checkpoint body (C2SP tlog-checkpoint):   <origin>\\n<tree size>\\n<base64 root hash>\\n
Signed note (C2SP signed-note):           <body>\\n— <key name> <base64(key id ‖ signature)>\\n
Key id:   the first 4 bytes of SHA-256(<key name> ‖ 0x0A ‖ 0x01 ‖ <32-byte Ed25519 public key>)
Verifier key (the note verifier-key form): <key name>+<key id hex>+<base64(0x01 ‖ public key)>

Pure functions over `cryptography`'s Ed25519; no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = 0x01
SIG_PREFIX = "\u2014 "  # em dash and a space start every signature line


class NoteError(Exception):
    """A note, checkpoint or key is malformed or its signature does not verify."""


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")


@dataclass(frozen=True, slots=True)
class Verifier:
    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    @property
    def raw_public_key(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def encode(self) -> str:
        raw = bytes([ALG_ED25519]) + self.raw_public_key
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(raw).decode()}"

    def fingerprint(self) -> str:
        """SHA-256 of the verifier key string, for people to compare over the phone or on paper."""
        return hashlib.sha256(self.encode().encode()).hexdigest()


def parse_verifier(text: str) -> Verifier:
    try:
        name, kid_hex, key_b64 = text.strip().split("+", 2)
        kid = bytes.fromhex(kid_hex)
        raw = base64.b64decode(key_b64, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise NoteError(f"not a verifier key of the form <name>+<key id hex>+<base64 key>: {exc}") from exc
    _check_name(name)
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise NoteError("the verifier key is not an Ed25519 key (algorithm byte 0x01 and 32 bytes)")
    if key_id(name, raw[1:]) != kid:
        raise NoteError(f"the verifier key's id {kid_hex} does not match its name and public key")
    return Verifier(name, kid, Ed25519PublicKey.from_public_bytes(raw[1:]))


@dataclass(frozen=True, slots=True)
class Signer:
    name: str
    private_key: Ed25519PrivateKey

    @classmethod
    def from_seed(cls, name: str, seed_b64: str) -> Signer:
        _check_name(name)
        try:
            seed = base64.b64decode(seed_b64, validate=True)
            return cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        except (ValueError, binascii.Error) as exc:
            raise NoteError(
                f"the ledger signing key must be base64 of a 32-byte Ed25519 seed: {exc}"
            ) from exc

    @property
    def verifier(self) -> Verifier:
        pub = self.private_key.public_key()
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return Verifier(self.name, key_id(self.name, raw), pub)

    def sign(self, body: str) -> str:
        """Wrap `body` (ending in a newline) in a signed note."""
        if not body.endswith("\n"):
            raise NoteError("a note body ends with a newline")
        sig = self.private_key.sign(body.encode())
        return f"{body}\n{SIG_PREFIX}{self.name} {base64.b64encode(self.verifier.key_id + sig).decode()}\n"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def parse_checkpoint(body: str) -> Checkpoint:
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError(
            "a checkpoint has an origin line, a size line and a root line, each ending in a newline"
        )
    origin, size_text, root_b64 = lines[0], lines[1], lines[2]
    if not origin:
        raise NoteError("the checkpoint's origin line is empty")
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise NoteError(f"the checkpoint's size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_b64, validate=True)
    except binascii.Error as exc:
        raise NoteError(f"the checkpoint's root hash is not base64: {exc}") from exc
    if len(root) != 32:
        raise NoteError(f"the checkpoint's root hash has {len(root)} bytes, not 32")
    return Checkpoint(origin, int(size_text), root)


def split_note(text: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """Split a signed note into its body and its (key name, key id, signature) lines."""
    sep = text.rfind("\n\n")
    if sep < 0 or not text.endswith("\n"):
        raise NoteError("a signed note is a body, a blank line, and signature lines, ending in a newline")
    body, sig_block = text[: sep + 1], text[sep + 2 :]
    sigs = []
    for line in sig_block.rstrip("\n").split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise NoteError(f"signature line {line!r} does not start with '— '")
        try:
            name, blob_b64 = line[len(SIG_PREFIX) :].split(" ")
            blob = base64.b64decode(blob_b64, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise NoteError(f"malformed signature line {line!r}") from exc
        if len(blob) < 5:
            raise NoteError(f"signature line {line!r} is too short")
        sigs.append((name, blob[:4], blob[4:]))
    if not sigs:
        raise NoteError("the note carries no signature")
    return body, sigs


def open_note(text: str, verifier: Verifier) -> str:
    """Return the note's body if a signature line from `verifier` verifies; raise NoteError otherwise."""
    body, sigs = split_note(text)
    mine = [(n, k, s) for n, k, s in sigs if n == verifier.name and k == verifier.key_id]
    if not mine:
        raise NoteError(f"the note has no signature by key {verifier.name}+{verifier.key_id.hex()}")
    for _, _, sig in mine:
        try:
            verifier.public_key.verify(sig, body.encode())
            return body
        except InvalidSignature:
            continue
    raise NoteError(f"the signature by {verifier.name} does not verify: the note was altered or forged")


def signers_of(text: str) -> list[tuple[str, bytes]]:
    """The (key name, key id) of every signature line of a note, in order."""
    return [(name, kid) for name, kid, _ in split_note(text)[1]]


def open_note_any(text: str, verifiers: Sequence[Verifier]) -> tuple[str, Verifier]:
    """The note's body and the first of `verifiers` (in the caller's order) whose signature verifies.

    The key id on each signature line selects the key: after a rotation a log holds checkpoints
    signed by the old key and by the new one, and an auditor may trust both. A signature line by a
    trusted key that does not verify is a forgery, whatever other lines say.
    """
    _, sigs = split_note(text)
    present = {(name, kid) for name, kid, _ in sigs}
    candidates = [v for v in verifiers if (v.name, v.key_id) in present]
    if not candidates:
        keys = ", ".join(f"{n}+{k.hex()}" for n, k, _ in sigs)
        trusted = ", ".join(f"{v.name}+{v.key_id.hex()}" for v in verifiers)
        raise NoteError(f"the note is signed by {keys}, none of the trusted keys ({trusted})")
    for verifier in candidates:
        body = open_note(text, verifier)  # raises on a forged line by a trusted key
    return body, candidates[0]


def open_checkpoint_any(
    text: str, verifiers: Sequence[Verifier], *, origin: str | None = None
) -> tuple[Checkpoint, Verifier]:
    """As open_checkpoint, under whichever of `verifiers` signed the note (see open_note_any)."""
    body, verifier = open_note_any(text, verifiers)
    checkpoint = parse_checkpoint(body)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"the checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint, verifier


def open_checkpoint(text: str, verifier: Verifier, *, origin: str | None = None) -> Checkpoint:
    checkpoint = parse_checkpoint(open_note(text, verifier))
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"the checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint
