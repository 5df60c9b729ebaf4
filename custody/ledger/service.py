"""Building the ledger from settings, and the background checkpointer every process contends to run."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.engine import Engine

from custody.ledger.leader import Leadership, leadership_for
from custody.ledger.note import Signer, parse_verifier
from custody.ledger.store import Ledger
from custody.settings import Settings

log = logging.getLogger("custody.ledger")

#: Checkpointer loops of this process that lead right now (an API and a worker may share a process
#: in tests; a deployed process runs one loop).
_leading: set[int] = set()


def ledger_for(settings: Settings, engine: Engine) -> Ledger:
    """The ledger signing with CUSTODY_LEDGER_SIGNING_KEY and publishing CUSTODY_LEDGER_PREVIOUS_KEYS
    beside it (checkpoints signed before a key rotation stay verifiable)."""
    return Ledger(
        engine,
        Signer.from_seed(settings.ledger_origin, settings.secret("ledger_signing_key")),
        [parse_verifier(k) for k in settings.ledger_previous_keys],
    )


def checkpointer_is_leader() -> bool:
    """Whether this process signs the deployment's checkpoints now (cheap: no I/O)."""
    return bool(_leading)


async def run_checkpointer(ledger: Ledger, interval_s: float, leadership: Leadership | None = None) -> None:
    """Sign a checkpoint every `interval_s` seconds when the tree grew (so at least once a minute
    while entries arrive), in the one process of the deployment that holds leadership
    (custody/ledger/leader.py). The others stand by and try again every round, so when the leader
    dies another signs within one interval. Runs until cancelled; a failed round is logged and
    retried next round."""
    leadership = leadership or leadership_for(ledger.engine)
    me = id(leadership)
    leading: bool | None = None
    try:
        while True:
            try:
                now = await asyncio.to_thread(leadership.hold)
            except Exception:
                log.exception("checkpointer: contending for leadership failed; standing by")
                now = False
            if now != leading:
                log.info("checkpointer: %s", "leading" if now else "standing by")
                leading = now
                (_leading.add if now else _leading.discard)(me)
            if now:
                try:
                    await asyncio.to_thread(ledger.sign_checkpoint)
                except Exception:
                    log.exception("signing a ledger checkpoint failed; retrying in %.0f s", interval_s)
            await asyncio.sleep(interval_s)
    finally:
        _leading.discard(me)
        with contextlib.suppress(Exception):  # bounded: a hung database must not hold up shutdown
            await asyncio.wait_for(asyncio.shield(asyncio.to_thread(leadership.release)), 5)
