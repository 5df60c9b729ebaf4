"""`custody`: run the embedded stack and administer users.

Exit codes: 0 success, 1 failure the message explains, 2 bad usage.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from cli.ledger import app as ledger_app
from custody.errors import CustodyError

if TYPE_CHECKING:
    from sqlmodel import Session

app = typer.Typer(
    help="custody: chain of custody for video evidence from private cameras.", no_args_is_help=True
)
users_app = typer.Typer(help="Staff users.", no_args_is_help=True)
app.add_typer(users_app, name="users")
sessions_app = typer.Typer(help="Web console and residents' browser sessions.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")
integrations_app = typer.Typer(
    help="CAD/RTCC systems that post incidents (POST /incidents).", no_args_is_help=True
)
app.add_typer(integrations_app, name="integrations")
app.add_typer(ledger_app, name="ledger")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@contextlib.contextmanager
def _database() -> Iterator[Session]:
    """A session on CUSTODY_DATABASE_URL for an operator's command, once the schema is known to be
    this code's (outside dev mode `custody migrate` first; the refusal says so)."""
    from custody.db import create_db_engine, prepare_schema, session_scope
    from custody.settings import load_settings

    settings = load_settings()
    engine = create_db_engine(settings.db_url)
    try:
        prepare_schema(engine, settings)
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


@app.command()
def dev(
    headless: Annotated[bool, typer.Option(help="Run Temporal without its Web UI")] = False,
) -> None:
    """Start the whole stack on embedded defaults (what `make run` does). Ctrl-C stops it."""
    from custody.settings import load_settings
    from devstack.launcher import run

    try:
        settings = load_settings()
    except CustodyError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    raise typer.Exit(run(settings, headless=headless, console=console))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default CUSTODY_API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default CUSTODY_API_PORT)")] = None,
    access_log: Annotated[bool, typer.Option(help="Log each request (tokens redacted)")] = True,
    log_level: Annotated[str, typer.Option(help="debug | info | warning | error")] = "info",
) -> None:
    """Serve the HTTP API (one replica). Outside dev mode run `custody migrate` first."""
    from api.serve import serve as serve_api

    try:
        serve_api(host=host, port=port, access_log=access_log, log_level=log_level)
    except CustodyError as exc:
        err.print(f"[red]custody serve: {exc.message}[/red]")
        raise typer.Exit(1) from exc


@app.command()
def worker() -> None:
    """Run one worker: workflows, activities, housekeeping. Outside dev mode run `custody migrate` first."""
    from worker import run

    raise typer.Exit(run())


@app.command()
def migrate(
    app_role: Annotated[
        str | None,
        typer.Option(
            "--app-role",
            envvar="CUSTODY_DB_APP_ROLE",
            help="PostgreSQL role the API and workers log in as: after migrating, grant it rows of the "
            "working tables and only SELECT and INSERT on the ledger's (custody/dbroles.py)",
        ),
    ] = None,
) -> None:
    """Bring the database (CUSTODY_DATABASE_URL) to this code's schema. Run before each release.

    The only way the schema changes outside dev mode. Safe to run again, and from several places
    at once (PostgreSQL: an advisory lock serialises them). Run it as the schema's owner; with
    --app-role, the application's role gets exactly what it needs on every table, new ones included."""
    from custody.db import create_db_engine
    from custody.db import migrate as run_migrations
    from custody.dbroles import grant_app_role
    from custody.settings import load_settings

    try:
        settings = load_settings()
        engine = create_db_engine(settings.db_url, pool_size=1)
        try:
            before, after = run_migrations(engine)
            if app_role:
                grant_app_role(engine, app_role)
        finally:
            engine.dispose()
    except CustodyError as exc:
        err.print(f"[red]custody migrate: {exc.message}[/red]")
        raise typer.Exit(1) from exc
    where = engine.url.render_as_string(hide_password=True)
    if before == after:
        console.print(f"{where}: already at revision {after}, nothing to do")
    else:
        console.print(f"{where}: migrated from {before or 'an empty database'} to revision {after}")
    if app_role:
        console.print(
            f"role {app_role}: reads and writes the working tables; reads and appends the ledger "
            "(no UPDATE, DELETE or TRUNCATE there); owns nothing"
        )


@app.command("verify")
def verify_footage(
    file: Annotated[Path, typer.Argument(help="The footage file to prove")],
    bundle: Annotated[Path, typer.Option("--bundle", help="The case's custody-bundle.json")],
    public_key: Annotated[
        str | None, typer.Option("--public-key", help="The ledger key you trust (string or file)")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="A newer signed checkpoint (GET /ledger/checkpoint)")
    ] = None,
    consistency: Annotated[
        Path | None,
        typer.Option("--consistency-proof", help="JSON from GET /ledger/proofs/consistency for --checkpoint"),
    ] = None,
) -> None:
    """Prove one footage file against a custody bundle, offline. Exit 0 proven, 1 not, 2 bad input."""
    from rich.markup import escape
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from cli.ledger import load_verifier
    from custody.ledger.bundle_verify import BundleVerificationError, verify_file
    from custody.ledger.note import NoteError

    if not file.is_file() or not bundle.is_file():
        err.print(f"[red]{escape(str(file if not file.is_file() else bundle))} is not a readable file[/red]")
        raise typer.Exit(2)
    try:
        trusted = load_verifier(public_key) if public_key else None
    except (NoteError, OSError) as exc:
        err.print(f"[red]--public-key: {escape(str(exc))}[/red]")
        raise typer.Exit(2) from exc
    with Progress(BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("hashing", total=file.stat().st_size)
        try:
            report = verify_file(
                file,
                bundle,
                trusted=trusted,
                progress=lambda n: bar.advance(task, n),
                newer_checkpoint=checkpoint.read_text() if checkpoint else None,
                consistency_proof=json.loads(consistency.read_text()) if consistency else None,
            )
        except BundleVerificationError as exc:
            bar.stop()
            console.print(f"[red]FAIL[/red] {escape(str(exc))}")
            raise typer.Exit(2 if exc.step == 1 else 1) from exc  # step 1: the bundle is unreadable
        except (OSError, ValueError, KeyError, TypeError) as exc:  # a malformed bundle or proof file
            bar.stop()
            err.print(f"[red]bad input: a file given is unreadable or malformed ({escape(repr(exc))})[/red]")
            raise typer.Exit(2) from exc
    for line in report.steps:
        console.print(f"[green]ok[/green]   {escape(line)}")
    for warning in report.warnings:
        console.print(f"[yellow]note[/yellow] {escape(warning)}")
    console.print(
        f"[green]PROVEN[/green] {escape(str(file))} is evidence {report.evidence_id} of case {report.case_id}"
        f" in a log of {report.tree_size} entries signed by the key above. Bound by the signed log:"
    )
    width = max(len(k) for k, _ in report.proven + report.stated)
    for what, value in report.proven:
        console.print(f"  {what:<{width}}  {escape(value)}")
    console.print("[yellow]stated by the bundle, not proven[/yellow] (the signed log does not bind these):")
    for what, value in report.stated:
        console.print(f"  {what:<{width}}  {escape(value)}")


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="Login name (a-z, 0-9, . _ -)")],
    role: Annotated[str, typer.Option("--role", help="investigator | prosecutor | auditor | admin")],
    agency: Annotated[str, typer.Option("--agency", help="Agency code, e.g. MPD, MTPD, USCP")],
    name: Annotated[
        str, typer.Option("--name", help="Full name, as the console and custody reports show it")
    ] = "",
    title: Annotated[
        str, typer.Option("--title", help="Job title, printed on report certifications (e.g. Detective)")
    ] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (for scripts)")
    ] = False,
) -> None:
    """Create a staff user. Asks for the password (twice) unless --password-stdin is given."""
    from custody.services.users import create_user, ensure_agencies

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with _database() as session:
            ensure_agencies(session=session)
            user = create_user(
                session=session,
                username=username,
                password=password,
                role=role,
                agency=agency,
                full_name=name,
                title=title,
            )
            session.commit()  # before the record (SQLite's one writer)
            _audit_cli(
                session,
                "user_created",
                f"user {user.id} as {user.role} of {user.agency}",
                agency=user.agency,
            )
            console.print(f"created {user.role} [bold]{user.username}[/bold] of {user.agency} (id {user.id})")
    except CustodyError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc


def _audit_cli(session: Session, event: str, detail: str, *, agency: str | None = None) -> None:
    """An operator's privileged command on the record (CJIS 5.4.1.1): component cli, the account
    that ran it as the actor."""
    from sqlalchemy.engine import Engine

    from custody.ledger.entries import Component, EventType
    from custody.ledger.service import ledger_for
    from custody.services import audit
    from custody.settings import load_settings

    engine = session.get_bind()
    assert isinstance(engine, Engine)
    audit.record(
        ledger_for(load_settings(), engine),
        EventType(event),
        actor=audit.operator_actor(),
        agency=agency,
        component=Component.cli,
        detail=detail,
    )


@users_app.command("list")
def users_list() -> None:
    """List staff users."""
    from sqlmodel import select

    from custody.models import User

    with _database() as session:
        for user in session.exec(select(User).order_by(User.username)).all():
            console.print(
                f"{user.username}\t{user.role}\t{user.agency}\t{'active' if user.active else 'disabled'}"
            )


@sessions_app.command("end-all")
def sessions_end_all(
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only 'staff' (web console) or 'resident' sessions")
    ] = None,
) -> None:
    """Sign everyone out of the web console and residents' pages at once (their sessions live in the
    database: rotating CUSTODY_JWT_KEY ends API tokens, not these)."""
    from custody.services.websessions import end_every

    if kind not in (None, "staff", "resident"):
        err.print("--kind must be 'staff' or 'resident'")
        raise typer.Exit(2)
    with _database() as session:
        ended = end_every(session=session, kind=kind)
    console.print(f"ended {ended} {kind or 'staff and resident'} session(s); everyone signs in again")


@integrations_app.command("create")
def integrations_create(
    name: Annotated[str, typer.Argument(help="What the system is, e.g. 'MPD CAD'")],
    agency: Annotated[str, typer.Option("--agency", help="The agency whose cases its incidents open")],
) -> None:
    """Create an integration and print its id and secret. The secret is shown this once: give it to
    the CAD system's operator over a safe channel (it signs each POST /incidents)."""
    from custody.services.incidents import create_integration
    from custody.services.users import ensure_agencies

    try:
        with _database() as session:
            ensure_agencies(session=session)
            integration, secret = create_integration(session=session, name=name, agency=agency)
            session.commit()  # before the record (SQLite's one writer)
            _audit_cli(
                session,
                "integration_created",
                f"integration {integration.id} for {integration.agency}",
                agency=integration.agency,
            )
    except CustodyError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    # Plain print, not the rich console: nothing wraps or styles the secret, and it goes to stdout only.
    print(f"id: {integration.id}")
    print(f"secret: {secret}")
    err.print("Store the secret now: it is not shown again.")


@integrations_app.command("list")
def integrations_list() -> None:
    """The integrations: id, agency, state, created, name (never the secret)."""
    from custody.localtime import when
    from custody.services.incidents import list_integrations
    from custody.settings import load_settings

    tz = load_settings().tz
    with _database() as session:
        rows = list_integrations(session=session)
        if not rows:
            err.print("No integrations yet: `custody integrations create NAME --agency A` makes one.")
        for i in rows:
            state = "disabled" if i.disabled else "active"
            print(f"{i.id}  {i.agency:<8} {state:<8} {when(i.created_at, tz)}  {i.name}")


@integrations_app.command("disable")
def integrations_disable(
    integration_id: Annotated[str, typer.Argument(help="The id `integrations create` printed")],
) -> None:
    """Disable an integration: its incidents are refused from now on (401, code `disabled`). For a
    leaked secret or a retired CAD system; a new integration replaces it."""
    from custody.services.incidents import disable_integration

    try:
        with _database() as session:
            integration = disable_integration(session=session, integration_id=integration_id)
            name, agency = integration.name, integration.agency
            session.commit()  # before the record (SQLite's one writer)
            _audit_cli(session, "integration_disabled", f"integration {integration_id}", agency=agency)
    except CustodyError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    print(f"disabled: {integration_id} ({name})")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
