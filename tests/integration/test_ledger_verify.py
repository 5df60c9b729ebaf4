"""Export and offline verification, with every kind of tampering the verifier must catch."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from custody.db import create_db_engine, migrate
from custody.ledger.entries import CustodyEvent, EventType
from custody.ledger.merkle import leaf_hash, root_of
from custody.ledger.note import Checkpoint, Signer
from custody.ledger.store import Ledger
from custody.ledger.verify import LedgerVerificationError, verify_export

ORIGIN = "custody.test/ledger"
SIGNER = Signer.from_seed(ORIGIN, base64.b64encode(os.urandom(32)).decode())


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ledger (SQLite) with 120 events and several checkpoints, exported to a folder."""
    home = tmp_path_factory.mktemp("ledger")
    engine = create_db_engine(f"sqlite:///{home / 'l.db'}")
    migrate(engine)
    ledger = Ledger(engine, SIGNER)
    for batch in range(4):
        ledger.append(
            [
                (
                    f"e-{batch}-{i}",
                    CustodyEvent(
                        EventType.evidence_downloaded,
                        actor=f"u{i}",
                        agency="MPD",
                        case_id=str(uuid.uuid4()),
                        sha256="ab" * 32,
                        detail="line\nbreak",
                    ),
                )
                for i in range(30)
            ]
        )
        ledger.sign_checkpoint()
    folder = home / "export"
    ledger.export(folder)
    return folder


def _copy(export: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(export, dst)
    return dst


def _lines(folder: Path) -> list[bytes]:
    return (folder / "entries.jsonl").read_bytes().splitlines(keepends=True)


def _write(folder: Path, lines: list[bytes]) -> None:
    (folder / "entries.jsonl").write_bytes(b"".join(lines))


def test_untouched_export_verifies(export: Path) -> None:
    report = verify_export(export, SIGNER.verifier)
    lines = _lines(export)
    assert report.tree_size == len(lines)
    assert report.root_hex == root_of([leaf_hash(x.rstrip(b"\n")) for x in lines]).hex()
    assert len(report.checkpoints_checked) >= 4
    assert [s[0] for s in report.steps] == ["1", "2", "3", "4", "5"]


def _change_byte(folder: Path) -> None:
    lines = _lines(folder)
    lines[17] = lines[17].replace(b"MPD", b"MPE", 1)
    _write(folder, lines)


def _delete(folder: Path) -> None:
    lines = _lines(folder)
    del lines[40]
    _write(folder, lines)


def _insert(folder: Path) -> None:
    lines = _lines(folder)
    lines.insert(50, lines[49])
    _write(folder, lines)


def _swap(folder: Path) -> None:
    lines = _lines(folder)
    lines[60], lines[61] = lines[61], lines[60]
    _write(folder, lines)


def _truncate(folder: Path) -> None:
    _write(folder, _lines(folder)[:-3])


def _change_last(folder: Path) -> None:
    lines = _lines(folder)
    lines[-1] = lines[-1].replace(b'"v":1', b'"v":2')
    _write(folder, lines)


def _fork(folder: Path) -> None:
    """A second, validly signed checkpoint of an existing size but with another root."""
    size = int((folder / "checkpoint.txt").read_text().split("\n")[1]) - 10
    forged = SIGNER.sign(Checkpoint(ORIGIN, size, leaf_hash(b"another history")).body())
    (folder / "checkpoints" / f"{size}-fork.txt").write_text(forged)
    (folder / "checkpoints" / f"{size}-real.txt").write_text(
        SIGNER.sign(
            Checkpoint(
                ORIGIN, size, root_of([leaf_hash(x.rstrip(b"\n")) for x in _lines(folder)[:size]])
            ).body()
        )
    )


def _foreign_checkpoint(folder: Path) -> None:
    other = Signer.from_seed(ORIGIN, base64.b64encode(os.urandom(32)).decode())
    body = (folder / "checkpoint.txt").read_text().split("\n\n")[0] + "\n"
    (folder / "checkpoint.txt").write_text(other.sign(body))


TAMPERING: dict[str, tuple[Callable[[Path], None], int, int | None]] = {
    # name: (tamper, failing step, first bad index named, or None when only a range can be named)
    "one byte of an entry changed": (_change_byte, 3, 17),
    "an entry deleted": (_delete, 3, 39),
    "an entry inserted": (_insert, 3, 49),
    "two entries swapped": (_swap, 3, 59),
    "the log truncated": (_truncate, 4, None),
    "the last entry changed": (_change_last, 4, None),
    "a fork: two checkpoints of one size": (_fork, 5, None),
    "a checkpoint signed by another key": (_foreign_checkpoint, 2, None),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_tampering_is_caught(export: Path, tmp_path: Path, name: str) -> None:
    tamper, step, index = TAMPERING[name]
    folder = _copy(export, tmp_path)
    tamper(folder)
    with pytest.raises(LedgerVerificationError) as info:
        verify_export(folder, SIGNER.verifier)
    assert info.value.step == step, str(info.value)
    if index is not None:
        assert info.value.index == index, str(info.value)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "ledger", "verify", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_verify_exit_codes(export: Path, tmp_path: Path) -> None:
    key = SIGNER.verifier.encode()
    ok = _cli(str(export), "--public-key", key)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "INTACT" in ok.stdout
    key_file = tmp_path / "key.txt"
    key_file.write_text(key + "\n")
    assert _cli(str(export), "--public-key", str(key_file)).returncode == 0

    bad = _copy(export, tmp_path)
    _change_byte(bad)
    failed = _cli(str(bad), "--public-key", key)
    assert failed.returncode == 1
    assert "first bad index: 17" in failed.stdout

    assert _cli(str(export), "--public-key", "not-a-key").returncode == 2
    assert _cli(str(tmp_path / "missing"), "--public-key", key).returncode == 2
