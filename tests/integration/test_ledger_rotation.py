"""Ledger signing key rotation: checkpoints signed by the old key stay verifiable beside the new key's.

The story, on each database engine: key A signs two checkpoints; the deployment rotates to key B
with A in CUSTODY_LEDGER_PREVIOUS_KEYS; the first checkpoint round records the change in the log (so
it grows) and B signs; more entries, B signs; the export verifies with A and B (every checkpoint
checked), with B alone (the whole log proven under B, A's checkpoints listed as not checked), and
not with A alone (the latest checkpoint is B's). A forged checkpoint under a trusted key still fails.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.web.audit import _consistency
from custody.db import create_db_engine, migrate
from custody.ledger.entries import CustodyEvent, EventType
from custody.ledger.merkle import leaf_hash
from custody.ledger.note import Checkpoint, Signer, signers_of
from custody.ledger.service import ledger_for
from custody.ledger.store import Ledger
from custody.ledger.verify import LedgerVerificationError, verify_export
from custody.settings import Settings
from tests.conftest import _create_pg_database, _drop_pg_database

ORIGIN = "custody.test/ledger"
SEED_A = base64.b64encode(os.urandom(32)).decode()
SEED_B = base64.b64encode(os.urandom(32)).decode()
A = Signer.from_seed(ORIGIN, SEED_A)
B = Signer.from_seed(ORIGIN, SEED_B)


def _grow(ledger: Ledger, n: int) -> None:
    ledger.append(
        [
            (f"r-{uuid.uuid4()}", CustodyEvent(EventType.evidence_viewed, actor="u", agency="MPD"))
            for _ in range(n)
        ]
    )


def _settings(db_url: str, seed: str, previous: str = "") -> Settings:
    return Settings(
        mode="test", database_url=db_url, ledger_signing_key=seed, ledger_origin=ORIGIN,
        ledger_previous_keys=previous,  # the env's string form, parsed by the validator
    )  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def rotated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The export of a ledger whose key was rotated from A to B, through the settings."""
    pg_name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('rot') / 'l.db'}"
    else:
        pg_name, url = _create_pg_database()
    engine = create_db_engine(url)
    try:
        migrate(engine)
        before = ledger_for(_settings(url, SEED_A), engine)
        for _ in range(2):
            _grow(before, 10)
            before.sign_checkpoint()
        last_a = before.latest_checkpoint()
        assert last_a is not None

        after = ledger_for(_settings(url, SEED_B, previous=A.verifier.encode()), engine)
        assert after.verifiers == (B.verifier, A.verifier)
        # The first round after the rotation, even before anything else happens: the change is
        # recorded in the log, which makes it grow, and B signs the whole log at once.
        first_b = after.sign_checkpoint()
        assert first_b is not None and first_b.tree_size > last_a.tree_size
        assert signers_of(first_b.note) == [(ORIGIN, B.verifier.key_id)]
        changes = [
            e for _, e in after.entries(last_a.tree_size, first_b.tree_size) if b"ledger_key_changed" in e
        ]
        assert len(changes) == 1 and B.verifier.encode().encode() in changes[0]
        assert after.sign_checkpoint() == first_b  # recorded once
        assert ledger_for(_settings(url, SEED_B, A.verifier.encode()), engine).sign_checkpoint() == first_b

        _grow(after, 10)
        after.sign_checkpoint()
        _grow(after, 5)
        after.sign_checkpoint()

        history = {v.key_id: (first, last) for v, first, last in after.key_history()}
        a_first, a_last = history[A.verifier.key_id]
        b_first, b_last = history[B.verifier.key_id]
        assert a_first is not None and a_last is not None and b_first is not None and b_last is not None
        assert (a_last.tree_size, b_first.tree_size) == (last_a.tree_size, first_b.tree_size)
        assert a_first.tree_size < a_last.tree_size < b_first.tree_size < b_last.tree_size

        # The console's consistency check (auditors) across the rotation.
        check = _consistency(after, a_first.tree_size, b_last.tree_size)
        assert check["ok"], check["steps"]
        assert "rotated" in check["steps"][0][1]

        folder = tmp_path_factory.mktemp("export") / "export"
        after.export(folder)
        keys = (folder / "public-keys.txt").read_text().splitlines()
        assert keys == [B.verifier.encode(), A.verifier.encode()]
        yield folder
    finally:
        engine.dispose()
        if pg_name:
            _drop_pg_database(pg_name)


def test_both_keys_check_every_checkpoint(rotated: Path) -> None:
    report = verify_export(rotated, [B.verifier, A.verifier])
    assert report.key == B.verifier.encode()
    assert report.checkpoints_unchecked == []
    assert len(report.checkpoints_checked) == len(list((rotated / "checkpoints").glob("*.txt")))
    # Order does not matter: the key id on each signature line selects the key.
    assert verify_export(rotated, [A.verifier, B.verifier]).checkpoints_checked == report.checkpoints_checked


def test_new_key_alone_proves_the_log_and_names_what_it_cannot_check(rotated: Path) -> None:
    both = verify_export(rotated, [B.verifier, A.verifier])
    report = verify_export(rotated, B.verifier)
    assert (report.tree_size, report.root_hex) == (both.tree_size, both.root_hex)
    # A's two checkpoints cannot be checked without A: listed, not failed.
    assert len(report.checkpoints_unchecked) == 2
    assert all(A.verifier.key_id.hex() in keys for _, keys in report.checkpoints_unchecked)
    assert len(report.checkpoints_checked) == len(both.checkpoints_checked) - 2
    assert "not among the trusted keys" in report.steps[-1]


def test_old_key_alone_does_not_verify_the_latest_checkpoint(rotated: Path) -> None:
    with pytest.raises(LedgerVerificationError) as info:
        verify_export(rotated, A.verifier)
    assert info.value.step == 2
    assert "none of the trusted keys" in str(info.value)


def test_a_forged_checkpoint_under_a_trusted_key_fails(rotated: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "forged"
    shutil.copytree(rotated, folder)
    signed = A.sign(Checkpoint(ORIGIN, 3, leaf_hash(b"another history")).body())
    body, _, line = signed.rstrip("\n").rpartition("\n")
    # Keep A's key id, break the signature.
    blob = bytearray(base64.b64decode(line.split(" ")[-1]))
    blob[-1] ^= 1
    forged = f"{body}\n{line.rsplit(' ', 1)[0]} {base64.b64encode(bytes(blob)).decode()}\n"
    (folder / "checkpoints" / "3-forged.txt").write_text(forged)
    with pytest.raises(LedgerVerificationError) as info:
        verify_export(folder, [B.verifier, A.verifier])
    assert info.value.step == 5 and "altered or forged" in str(info.value)
    # Validly signed by A but another history: inconsistent with the log.
    (folder / "checkpoints" / "3-forged.txt").write_text(signed)
    with pytest.raises(LedgerVerificationError) as info:
        verify_export(folder, [B.verifier, A.verifier])
    assert info.value.step == 5


def test_cli_takes_the_public_key_repeated(rotated: Path) -> None:
    def cli(*keys: str) -> subprocess.CompletedProcess[str]:
        args = [a for k in keys for a in ("--public-key", k)]
        return subprocess.run(
            [sys.executable, "-m", "cli.main", "ledger", "verify", str(rotated), *args],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    both = cli(B.verifier.encode(), A.verifier.encode())
    assert both.returncode == 0 and "INTACT" in both.stdout, both.stdout + both.stderr
    assert "not checked" not in both.stdout
    new_only = cli(B.verifier.encode())
    assert new_only.returncode == 0 and "INTACT" in new_only.stdout
    assert "2 signed by a key you did not pass (not checked)" in new_only.stdout
    old_only = cli(A.verifier.encode())
    assert old_only.returncode == 1 and "step 2" in old_only.stdout


def test_previous_keys_setting_refuses_what_is_not_a_verifier_key(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="CUSTODY_LEDGER_PREVIOUS_KEYS"):
        _settings(f"sqlite:///{tmp_path / 'x.db'}", SEED_B, previous="custody.test/ledger+00+abc")
    two = _settings(
        f"sqlite:///{tmp_path / 'x.db'}", SEED_B, previous=f" {A.verifier.encode()} ,{B.verifier.encode()}"
    )
    assert two.ledger_previous_keys == [A.verifier.encode(), B.verifier.encode()]
