"""The embedded SMTP server: aiosmtpd storing every message it receives in a Maildir.

Run as `python -m devstack.smtp --host 127.0.0.1 --port 8025 --maildir .custody/mail`. The Maildir lets
a person or a test read exactly what owners were sent.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


def serve(host: str, port: int, maildir: Path) -> Controller:
    for sub in ("tmp", "new", "cur"):  # a Maildir is these three folders
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    controller = Controller(Mailbox(maildir), hostname=host, port=port, ready_timeout=10)
    controller.start()
    return controller


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args()
    controller = serve(args.host, args.port, args.maildir)
    print(f"SMTP listening on {args.host}:{args.port}, storing mail in {args.maildir}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
