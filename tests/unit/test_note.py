"""C2SP signed notes and checkpoints with Ed25519."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from custody.ledger.note import (
    Checkpoint,
    NoteError,
    Signer,
    key_id,
    open_checkpoint,
    parse_verifier,
)


def _signer(name: str = "custody.example/ledger") -> Signer:
    return Signer.from_seed(name, base64.b64encode(os.urandom(32)).decode())


def test_checkpoint_round_trip_and_format() -> None:
    signer = _signer()
    cp = Checkpoint("custody.example/ledger", 42, hashlib.sha256(b"x").digest())
    note = signer.sign(cp.body())
    lines = note.split("\n")
    assert lines[0] == "custody.example/ledger" and lines[1] == "42"
    assert base64.b64decode(lines[2]) == cp.root
    assert lines[3] == "" and lines[4].startswith("\u2014 custody.example/ledger ")
    blob = base64.b64decode(lines[4].split(" ")[2])
    assert len(blob) == 4 + 64
    verifier = parse_verifier(signer.verifier.encode())
    assert blob[:4] == verifier.key_id == key_id(signer.name, verifier.raw_public_key)
    assert open_checkpoint(note, verifier, origin="custody.example/ledger") == cp


def test_verifier_key_form() -> None:
    signer = _signer("log")
    text = signer.verifier.encode()
    name, kid, key = text.split("+", 2)
    raw = base64.b64decode(key)
    assert name == "log" and raw[0] == 1 and len(raw) == 33
    assert bytes.fromhex(kid) == hashlib.sha256(b"log\n\x01" + raw[1:]).digest()[:4]
    with pytest.raises(NoteError, match="does not match"):
        parse_verifier(f"other+{kid}+{key}")


def test_altered_or_foreign_notes_are_refused() -> None:
    signer, other = _signer(), _signer()
    note = signer.sign(Checkpoint("custody.example/ledger", 7, bytes(32)).body())
    with pytest.raises(NoteError, match="does not verify"):
        open_checkpoint(note.replace("\n7\n", "\n8\n"), signer.verifier)
    with pytest.raises(NoteError):
        open_checkpoint(note, other.verifier)
    with pytest.raises(NoteError, match="not 'elsewhere'"):
        open_checkpoint(note, signer.verifier, origin="elsewhere")
    with pytest.raises(NoteError):
        open_checkpoint("no signature here\n", signer.verifier)
