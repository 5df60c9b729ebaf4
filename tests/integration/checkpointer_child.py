"""One contender for the checkpointer's leadership, in a process of its own (as every API and worker
process is): the subject of tests/integration/test_processes.py.

    python -m tests.integration.checkpointer_child URL INTERVAL_S

Runs `run_checkpointer` on the ledger at URL and prints a line for each leadership change
("checkpointer: leading" / "standing by", the log lines operators see) and for each checkpoint it
signs ("signed N"), until it is killed.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from custody.db import create_db_engine
from custody.ledger.note import Signer
from custody.ledger.service import run_checkpointer
from custody.ledger.store import Ledger
from tests.integration.ledger_appender import ORIGIN, SEED_B64


class Announcing(Ledger):
    def sign_checkpoint(self):  # type: ignore[no-untyped-def]
        signed = super().sign_checkpoint()
        if signed is not None:
            print(f"signed {signed.tree_size}", flush=True)
        return signed


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    url, interval = sys.argv[1], float(sys.argv[2])
    ledger = Announcing(create_db_engine(url, pool_size=2), Signer.from_seed(ORIGIN, SEED_B64))
    asyncio.run(run_checkpointer(ledger, interval))


if __name__ == "__main__":
    main()
