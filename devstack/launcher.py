"""`custody dev` / `make run`: the whole stack on embedded defaults, supervised, stopped by Ctrl-C.

Order of start: SMTP, Temporal (with Web UI and custom search attributes) and SeaweedFS together; the
evidence bucket; then the API (which migrates the database and seeds demo users) and the worker. Every
URL and the demo logins are printed and written to `$CUSTODY_HOME/dev.json` (mode 0600). State stays
under `$CUSTODY_HOME`, so a second run finds the first one's data.

Once up, the stack is supervised (devstack/supervisor.py): a process that dies is restarted with
backoff and the stack keeps running; only Ctrl-C or SIGTERM ends it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from custody.db import create_db_engine, migrate
from custody.devsecrets import demo_passwords, write_private
from custody.errors import ConfigurationError
from custody.settings import Settings
from devstack.procs import Child, port_free, wait_until
from devstack.servers import S3Identity
from devstack.stack import EmbeddedServers
from devstack.supervisor import Supervisor


def _check_ports(settings: Settings) -> None:
    wanted = {
        "CUSTODY_API_PORT": settings.api_port,
        "CUSTODY_TEMPORAL_PORT": settings.temporal_port,
        "CUSTODY_TEMPORAL_UI_PORT": settings.temporal_ui_port,
        "CUSTODY_S3_PORT": settings.s3_port,
        "CUSTODY_SMTP_PORT": settings.smtp_port,
    }
    busy = [f"{name}={port}" for name, port in wanted.items() if not port_free(port)]
    if busy:
        raise ConfigurationError(
            f"These ports are in use on 127.0.0.1: {', '.join(busy)}. Stop what holds them (another "
            "`make run`?) or choose other ports with those variables."
        )


def dev_facts(settings: Settings) -> dict[str, Any]:
    passwords = demo_passwords(settings.home)
    return {
        "api": settings.api_url,
        "api_docs": f"{settings.api_url}/docs",
        "health": f"{settings.api_url}/health",
        "console": f"{settings.base_url}/login",
        "resident_signup": f"{settings.base_url}/resident/signup",
        "temporal": settings.temporal_address,
        "temporal_namespace": settings.temporal_namespace,
        "temporal_ui": f"http://127.0.0.1:{settings.temporal_ui_port}",
        "task_queue": settings.task_queue,
        "s3": {
            "endpoint": settings.s3_endpoint,
            "access_key": settings.secret("s3_access_key"),
            "secret_key": settings.secret("s3_secret_key"),
            "bucket": settings.s3_bucket,
        },
        "smtp": f"{settings.smtp_host}:{settings.smtp_port}",
        "maildir": str((settings.home / "mail").resolve()),
        "database_url": settings.db_url,
        "logs": str((settings.home / "logs").resolve()),
        "users": {role: {"username": f"demo-{role}", "password": pw} for role, pw in passwords.items()},
    }


def _print_banner(console: Console, facts: dict[str, Any], dev_json: Path) -> None:
    table = Table(title="custody is running", show_header=False, title_justify="left")
    table.add_row("Web console", facts["console"])
    table.add_row("Residents sign up", facts["resident_signup"])
    table.add_row("API", facts["api"])
    table.add_row("API docs", facts["api_docs"])
    table.add_row("Health", facts["health"])
    table.add_row("Temporal UI", facts["temporal_ui"])
    table.add_row("Temporal", f"{facts['temporal']} (namespace {facts['temporal_namespace']})")
    table.add_row("S3", f"http://{facts['s3']['endpoint']} bucket {facts['s3']['bucket']}")
    table.add_row("SMTP", f"{facts['smtp']} -> Maildir {facts['maildir']}")
    table.add_row("Database", facts["database_url"])
    for role, login in facts["users"].items():
        table.add_row(f"login: {role}", f"{login['username']} / {login['password']}")
    console.print(table)
    console.print(f"Facts for scripts: {dev_json}   Logs: {facts['logs']}   Stop: Ctrl-C", highlight=False)


def run(settings: Settings, *, headless: bool = False, console: Console | None = None) -> int:
    """Start everything, print the URLs, restart what dies, until Ctrl-C/SIGTERM."""
    console = console or Console()
    settings.home.mkdir(parents=True, exist_ok=True)
    home = settings.home.resolve()
    logs = home / "logs"

    env = dict(os.environ)
    env["CUSTODY_HOME"] = str(home)
    env["CUSTODY_MODE"] = settings.mode
    env["PYTHONUNBUFFERED"] = "1"
    src_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = src_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")

    stop = threading.Event()
    named: dict[str, Child] = {}  # the embedded servers, filled as each starts
    children: list[Child] = []

    starting = True

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()
        if starting:  # abort the readiness waits at once; `finally` stops what was started
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _check_ports(settings)
        with console.status("starting SMTP, Temporal and SeaweedFS ...") as status:
            servers = EmbeddedServers(
                home, S3Identity(settings.secret("s3_access_key"), settings.secret("s3_secret_key")),
                temporal_port=settings.temporal_port, s3_port=settings.s3_port, smtp_port=settings.smtp_port,
                temporal_ui_port=None if headless else settings.temporal_ui_port,
                namespace=settings.temporal_namespace, bucket=settings.s3_bucket,
                retention_days=settings.evidence_retention_days, volume_size_mb=settings.s3_volume_size_mb,
                min_free_mb=settings.s3_min_free_mb, s3_data=settings.store_dir,
                children=named,
            )  # fmt: skip
            servers.start(status.update)
            status.update("migrating the database ...")
            engine = create_db_engine(settings.db_url, pool_size=1)
            try:
                migrate(engine)  # once, here: outside dev mode the API and worker only check it
            finally:
                engine.dispose()
            status.update("starting the API and the worker ...")
            api = Child(
                "api",
                [sys.executable, "-m", "api.serve", "--host", settings.api_host,
                 "--port", str(settings.api_port)],
                logs / "api.log", env=env, stop_grace_s=10,
            )  # fmt: skip
            worker = Child(
                "worker", [sys.executable, "-m", "worker"], logs / "worker.log", env=env, stop_grace_s=15
            )
            children.extend(named.values())
            children.append(api.start())
            children.append(worker.start())
            wait_until(
                f"API on {settings.api_url}",
                lambda: urllib.request.urlopen(f"{settings.api_url}/health", timeout=5).status == 200,  # noqa: S310
                timeout_s=90, child=api,
            )  # fmt: skip
            wait_until("worker", lambda: "worker ready" in worker.tail(50), timeout_s=60, child=worker)

        starting = False
        facts = dev_facts(settings)
        dev_json = home / "dev.json"
        write_private(dev_json, json.dumps(facts, indent=2) + "\n")
        _print_banner(console, facts, dev_json)

        def say(text: str, loud: bool) -> None:
            stamp = time.strftime("%H:%M:%S")
            if loud:
                console.print(f"{stamp} [bold red]{escape(text)}[/bold red]", highlight=False)
            else:
                console.print(f"{stamp} [yellow]{escape(text)}[/yellow]", highlight=False)

        supervisor = Supervisor(children, say=say)
        while not stop.wait(0.5):
            supervisor.poll()
        console.print("stopping ...")
        return 0
    except KeyboardInterrupt:
        console.print("interrupted while starting; stopping ...")
        return 130
    except (TimeoutError, RuntimeError, ConfigurationError) as exc:
        console.print(f"[red]custody could not start:[/red] {exc}")
        return 1
    finally:
        for child in reversed(children or list(named.values())):
            child.stop()
        (home / "dev.json").unlink(missing_ok=True)  # its facts no longer hold
        for sig, handler in previous.items():
            signal.signal(sig, handler)
