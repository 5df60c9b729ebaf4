"""Building the ledger from settings, and the background checkpointer both processes run."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.engine import Engine

from custody.ledger.note import Signer, parse_verifier
from custody.ledger.store import Ledger
from custody.settings import Settings

log = logging.getLogger("custody.ledger")


def ledger_for(settings: Settings, engine: Engine) -> Ledger:
    """The ledger signing with CUSTODY_LEDGER_SIGNING_KEY and publishing CUSTODY_LEDGER_PREVIOUS_KEYS
    beside it (checkpoints signed before a key rotation stay verifiable)."""
    return Ledger(
        engine,
        Signer.from_seed(settings.ledger_origin, settings.secret("ledger_signing_key")),
        [parse_verifier(k) for k in settings.ledger_previous_keys],
    )


async def run_checkpointer(ledger: Ledger, interval_s: float) -> None:
    """Sign a checkpoint every `interval_s` seconds when the tree grew (so at least once a minute
    while entries arrive). Runs until cancelled; a failed round is logged and retried next round."""
    while True:
        try:
            await asyncio.to_thread(ledger.sign_checkpoint)
        except Exception:
            log.exception("signing a ledger checkpoint failed; retrying in %.0f s", interval_s)
        await asyncio.sleep(interval_s)
