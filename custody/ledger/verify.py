"""Offline verification of an exported ledger, in numbered steps.

Imports nothing but the pure ledger modules (merkle, note): it runs from an exported folder alone,
with the public key the auditor trusts.

  Step 1  Read the export (manifest, entries, checkpoints).
  Step 2  Check the latest checkpoint's signature under the trusted key (C2SP signed-note, Ed25519).
  Step 3  Recompute every leaf hash, RFC 9162 §2.1.1 (SHA-256(0x00 ‖ entry)), and check each entry's
          `prev` link to the leaf before it, which names the first changed, removed, inserted or
          moved entry.
  Step 4  The recomputed root equals the checkpoint's root, over exactly the checkpoint's tree size.
  Step 5  Every older checkpoint (from the export and any given): signature, and its root equals the
          root recomputed at its size, i.e. the log only grew (consistency, RFC 9162 §2.1.4). Two
          checkpoints of one size with different roots are a fork.

Several trusted keys (a key rotation): the key id on each signature line selects the key. The latest
checkpoint must be signed by one of them. An older checkpoint signed only by keys the auditor did not
pass is not checked and is listed as such (it proves nothing either way, as if it were absent); one
carrying a signature line by a trusted key that does not verify is a forgery and fails.

What a rotation leaves proven, with only the new key B: every entry, old and new, is covered by the
latest checkpoint B signed (steps 2 to 4), and the B-signed checkpoints show the log only grew since B
started signing. Not proven without the old key A: that the log before the rotation is what A signed
then, i.e. that nobody holding B rewrote the older history at the change. Passing A as well checks
every A-signed checkpoint against the recomputed log, which closes that gap.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from custody.ledger.merkle import EMPTY_ROOT, CompactRange, leaf_hash
from custody.ledger.note import Checkpoint, NoteError, Verifier, open_checkpoint_any, signers_of, split_note

GENESIS_PREV = b"0" * 64
_PREV_KEY = b'"prev":"'

Progress = Callable[[int, int], None]


class LedgerVerificationError(Exception):
    """Verification failed at `step`; `index` is the first bad entry where one can be named."""

    def __init__(self, step: int, message: str, *, index: int | None = None,
                 expected: str | None = None, computed: str | None = None) -> None:  # fmt: skip
        text = f"step {step}: {message}"
        if index is not None:
            text += f" [first bad index: {index}]"
        if expected is not None or computed is not None:
            text += f" (expected {expected}, computed {computed})"
        super().__init__(text)
        self.step, self.message, self.index = step, message, index
        self.expected, self.computed = expected, computed


@dataclass
class LedgerReport:
    origin: str
    tree_size: int
    root_hex: str
    key: str
    checkpoints_checked: list[int] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    #: Older checkpoints signed by no trusted key: (file, the keys that did sign it).
    checkpoints_unchecked: list[tuple[str, str]] = field(default_factory=list)


def _read_checkpoints(folder: Path, extra: Iterable[Path]) -> list[tuple[str, str]]:
    found = []
    cps = folder / "checkpoints"
    if cps.is_dir():
        found += [(str(p), p.read_text()) for p in sorted(cps.glob("*.txt"))]
    found += [(str(p), p.read_text()) for p in extra]
    return found


def verify_export(
    folder: Path,
    trusted: Verifier | Sequence[Verifier],
    *,
    older_checkpoints: Iterable[Path] = (),
    progress: Progress | None = None,
) -> LedgerReport:
    keys = [trusted] if isinstance(trusted, Verifier) else list(trusted)
    if not keys:
        raise ValueError("verify_export needs at least one trusted key")
    # Step 1 ---------------------------------------------------------------------------------
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        entries_path = folder / manifest.get("entries", "entries.jsonl")
        latest_text = (folder / manifest.get("checkpoint", "checkpoint.txt")).read_text()
    except (OSError, ValueError) as exc:
        raise LedgerVerificationError(1, f"cannot read the export in {folder}: {exc}") from exc
    origin = str(manifest.get("origin", keys[0].name))
    report = LedgerReport(origin, 0, "", keys[0].encode())
    report.steps.append(f"1. read the export in {folder}")

    # Step 2 ---------------------------------------------------------------------------------
    try:
        latest, signer = open_checkpoint_any(latest_text, keys, origin=origin)
    except NoteError as exc:
        raise LedgerVerificationError(
            2, f"the checkpoint's signature is not valid under the trusted key: {exc}"
        ) from exc
    report.tree_size, report.root_hex, report.key = latest.size, latest.root.hex(), signer.encode()
    report.steps.append(f"2. checkpoint signature valid under {signer.name}+{signer.key_id.hex()}")

    # Older checkpoints are opened first so that their sizes can be checked in the same pass.
    trusted_ids = {(v.name, v.key_id) for v in keys}
    older: list[tuple[str, Checkpoint]] = []
    for name, text in _read_checkpoints(folder, older_checkpoints):
        try:
            signed_by = signers_of(text)
            if not trusted_ids.intersection(signed_by):
                report.checkpoints_unchecked.append((name, ", ".join(f"{n}+{k.hex()}" for n, k in signed_by)))
                continue
            older.append((name, open_checkpoint_any(text, keys, origin=origin)[0]))
        except NoteError as exc:
            raise LedgerVerificationError(5, f"checkpoint {name} is not validly signed: {exc}") from exc
    by_size: dict[int, list[tuple[str, Checkpoint]]] = {}
    for name, cp in [*older, ("checkpoint.txt", latest)]:
        by_size.setdefault(cp.size, []).append((name, cp))
    for size, group in by_size.items():
        roots = {cp.root for _, cp in group}
        if len(roots) > 1:
            names = ", ".join(n for n, _ in group)
            raise LedgerVerificationError(
                5, f"fork: checkpoints {names} sign size {size} with different roots"
            )

    # Step 3 ---------------------------------------------------------------------------------
    total = latest.size
    roots_at: dict[int, bytes] = {0: EMPTY_ROOT} if 0 in by_size else {}
    cr = CompactRange()
    prev_hex = GENESIS_PREV
    count = 0
    try:
        fh = entries_path.open("rb")
    except OSError as exc:
        raise LedgerVerificationError(1, f"cannot read the entries: {exc}") from exc
    with fh:
        for raw in fh:
            data = raw[:-1] if raw.endswith(b"\n") else raw
            at = data.find(_PREV_KEY)
            linked = data[at + 8 : at + 72] if at >= 0 else b""
            if linked != prev_hex:
                first_in_doubt = max(0, count - 1)
                raise LedgerVerificationError(
                    3,
                    f"entry {count} does not link to entry {count - 1}: entry {first_in_doubt} or {count} "
                    "was changed, removed, inserted or moved",
                    index=first_in_doubt,
                    expected=prev_hex.decode(),
                    computed=linked.decode() or "no prev field",
                )
            leaf = leaf_hash(data)
            cr.append(leaf)
            count += 1
            prev_hex = leaf.hex().encode()
            if count in by_size:
                roots_at[count] = cr.root()
            if progress is not None and (count & 0x3FFF == 0 or count == total):
                progress(count, total)
    report.steps.append(f"3. recomputed {count} leaf hashes; every entry links to the one before it")

    # Step 4 ---------------------------------------------------------------------------------
    if count < latest.size:
        raise LedgerVerificationError(
            4, f"the log was truncated: it has {count} entries but the checkpoint commits to {latest.size}",
            index=count,
        )  # fmt: skip
    if count > latest.size:
        raise LedgerVerificationError(
            4, f"the log has {count} entries but the checkpoint commits to {latest.size}: entries were added "
            "after signing", index=latest.size,
        )  # fmt: skip
    computed = roots_at.get(latest.size, cr.root())
    if computed != latest.root:
        bad = _locate(by_size, roots_at, latest.size)
        raise LedgerVerificationError(
            4, f"the recomputed root differs from the signed root{bad}", index=_first_bad(by_size, roots_at),
            expected=latest.root.hex(), computed=computed.hex(),
        )  # fmt: skip
    report.steps.append(f"4. root over {count} entries equals the signed root {latest.root.hex()}")

    # Step 5 ---------------------------------------------------------------------------------
    for name, cp in older:
        if cp.size > count:
            raise LedgerVerificationError(
                5, f"checkpoint {name} commits to {cp.size} entries; the log has {count}"
            )
        if roots_at[cp.size] != cp.root:
            raise LedgerVerificationError(
                5, f"checkpoint {name} (size {cp.size}) is not consistent with the log",
                expected=cp.root.hex(), computed=roots_at[cp.size].hex(),
            )  # fmt: skip
        report.checkpoints_checked.append(cp.size)
    report.steps.append(f"5. {len(older)} older checkpoint(s) consistent with the log")
    if report.checkpoints_unchecked:
        unknown = sorted({keys for _, keys in report.checkpoints_unchecked})
        report.steps.append(
            f"5. {len(report.checkpoints_unchecked)} older checkpoint(s) not checked: signed by "
            f"{'; '.join(unknown)}, not among the trusted keys (pass it with --public-key to check them)"
        )
    return report


def _first_bad(by_size: dict[int, list[tuple[str, Checkpoint]]], roots_at: dict[int, bytes]) -> int | None:
    good = [s for s, g in by_size.items() if roots_at.get(s) == g[0][1].root]
    return max(good, default=0) if good else 0


def _locate(by_size: dict[int, list[tuple[str, Checkpoint]]], roots_at: dict[int, bytes], size: int) -> str:
    good = max((s for s, g in by_size.items() if roots_at.get(s) == g[0][1].root), default=0)
    bad = min((s for s, g in by_size.items() if s in roots_at and roots_at[s] != g[0][1].root), default=size)
    return f": the first bad entry is at an index in [{good}, {bad})"


def checkpoint_key_name(text: str) -> str:
    """The key name on a note's first signature line (to tell the user which key signed it)."""
    _, sigs = split_note(text)
    return sigs[0][0]
