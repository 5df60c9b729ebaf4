"""A process that appends to the ledger until it is killed: the victim of the crash-inside-an-append test
(tests/integration/test_ledger_store.py).

    python -m tests.integration.ledger_appender URL ROUND MODE

MODE `entries`: append a few batches, then one more whose transaction dies by SIGKILL right after its
entries and tree nodes are inserted, before the commit. MODE `checkpoint`: the same inside
`sign_checkpoint`, after the checkpoint row is inserted. MODE `loop`: append batches (and sign a
checkpoint every few) for ever, printing one line per batch, until the test kills it at a moment of
its choosing. Each line names what was committed, so the test knows what must survive.
"""

from __future__ import annotations

import os
import random
import signal
import sys
from typing import Any

import sqlalchemy as sa

from custody.db import create_db_engine
from custody.ledger.entries import CustodyEvent, EventType
from custody.ledger.note import Signer
from custody.ledger.store import Ledger

SEED_B64 = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="  # 32 bytes of 0x07, as the store tests use
ORIGIN = "custody.test/ledger"


def ledger_for(url: str) -> Ledger:
    return Ledger(create_db_engine(url), Signer.from_seed(ORIGIN, SEED_B64))


def batch(round_: str, n: int, size: int) -> list[tuple[str, CustodyEvent]]:
    event = CustodyEvent(EventType.evidence_viewed, actor=f"crash-{round_}", agency="MPD")
    return [(f"r{round_}-b{n}-{i}", event) for i in range(size)]


def die_after(engine: sa.Engine, statement_start: str, stage: str) -> None:
    """SIGKILL this process right after a statement starting with `statement_start` has run inside
    its transaction: no rollback, no cleanup, exactly as a killed worker or API process."""

    @sa.event.listens_for(engine, "after_cursor_execute")
    def _kill(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().startswith(statement_start):
            print(f"stage {stage}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


def main(url: str, round_: str, mode: str) -> None:
    ledger = ledger_for(url)
    rng = random.Random(round_)
    for n in range(3):
        ledger.append(batch(round_, n, rng.randint(1, 12)))
    print(f"committed {ledger.size()}", flush=True)
    if mode == "entries":
        die_after(ledger.engine, "INSERT INTO ledger_nodes", "entries inserted, not committed")
        ledger.append(batch(round_, 99, 7))
    elif mode == "checkpoint":
        die_after(ledger.engine, "INSERT INTO ledger_checkpoints", "checkpoint inserted, not committed")
        ledger.sign_checkpoint()
    else:
        n = 3
        while True:
            ledger.append(batch(round_, n, rng.randint(1, 20)))
            if n % 4 == 0:
                ledger.sign_checkpoint()
            print(f"committed {ledger.size()}", flush=True)
            n += 1
    print("survived", flush=True)  # only reached when the kill did not happen: the test fails


if __name__ == "__main__":
    main(*sys.argv[1:4])
