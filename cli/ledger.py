"""`custody ledger export DIR`, `custody ledger verify DIR|URL --public-key KEY [--public-key KEY ...]`,
`custody ledger leader`."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from custody.ledger.note import NoteError, Verifier, parse_verifier
from custody.ledger.verify import LedgerVerificationError, verify_export

app = typer.Typer(help="The tamper-evident custody ledger.", no_args_is_help=True)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_INTACT, EXIT_TAMPERED, EXIT_USAGE = 0, 1, 2


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=err, transient=True,
    )  # fmt: skip


def load_verifier(key: str) -> Verifier:
    """A verifier key given as the key string itself or as a file holding it."""
    path = Path(key)
    text = path.read_text() if "+" not in key and path.exists() else key
    return parse_verifier(text)


@app.command("leader")
def leader() -> None:
    """Name the process that signs checkpoints now (host:pid); exit 1 when none does."""
    from custody.db import create_db_engine
    from custody.ledger.leader import current_leader
    from custody.settings import load_settings

    engine = create_db_engine(load_settings().db_url, pool_size=1)
    try:
        who = current_leader(engine)
    finally:
        engine.dispose()
    if who is None:
        err.print("no process leads the checkpointer (no API or worker running?)")
        raise typer.Exit(1)
    console.print(who)


@app.command("export")
def export(folder: Annotated[Path, typer.Argument(help="Folder to write the export into")]) -> None:
    """Write entries, the latest checkpoint, every older checkpoint and the public key as files."""
    from custody.db import create_db_engine, prepare_schema
    from custody.ledger.entries import Component, EventType
    from custody.ledger.service import ledger_for
    from custody.services import audit
    from custody.settings import load_settings

    settings = load_settings()
    engine = create_db_engine(settings.db_url)
    prepare_schema(engine, settings)
    ledger = ledger_for(settings, engine)
    checkpoint = ledger.export(folder)
    audit.record(
        ledger,
        EventType.ledger_exported,
        actor=audit.operator_actor(),
        component=Component.cli,
        detail=f"tree_size={checkpoint.tree_size} to a folder",
    )
    console.print(f"exported {checkpoint.tree_size} entries and their checkpoints to {folder}")
    console.print(f"public key: {ledger.verifier.encode()}")


def _download(url: str, token: str | None, folder: Path) -> None:
    """Fetch an export's files from a running custody API (auditor or admin token)."""
    import json

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = url.rstrip("/")
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:

        def get(path: str, **params: int) -> httpx.Response:
            resp = client.get(path, params=params)
            if resp.status_code in (401, 403):
                raise typer.BadParameter(
                    f"{base}{path} refused access ({resp.status_code}); pass an auditor --token"
                )
            resp.raise_for_status()
            return resp

        note = get("/ledger/checkpoint").text
        size = int(note.split("\n")[1])
        (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
        for cp in get("/ledger/checkpoints").json():
            if cp["tree_size"] <= size:
                text = get(f"/ledger/checkpoints/{cp['tree_size']}").text
                (folder / "checkpoints" / f"{cp['tree_size']}.txt").write_text(text)
        import rfc8785

        with _progress() as bar, (folder / "entries.jsonl").open("wb") as fh:
            task = bar.add_task("downloading entries", total=size)
            for start in range(0, size, 1000):
                for item in get("/ledger/entries", start=start, end=min(size, start + 1000)).json():
                    fh.write(rfc8785.dumps(item["entry"]) + b"\n")
                bar.update(task, completed=min(size, start + 1000))
        (folder / "checkpoint.txt").write_text(note)
        manifest = {"format": "custody-ledger-export/1", "origin": note.split("\n")[0], "tree_size": size}
        (folder / "manifest.json").write_text(json.dumps(manifest))


def _unzip(archive: Path, into: Path) -> Path:
    """An export zip as the console serves it (one folder `ledger-N/` holding the export), unpacked
    into `into`; the folder that holds manifest.json. Members that would land outside are refused."""
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            target = (into / name).resolve()
            if not target.is_relative_to(into.resolve()):
                err.print(f"[red]{archive}: member {name!r} points outside the archive; not unpacked[/red]")
                raise typer.Exit(EXIT_USAGE)
        zf.extractall(into)
    manifests = sorted(into.rglob("manifest.json"))
    if len(manifests) != 1:
        err.print(f"[red]{archive} does not hold exactly one ledger export (manifest.json)[/red]")
        raise typer.Exit(EXIT_USAGE)
    return manifests[0].parent


@app.command("verify")
def verify(
    source: Annotated[
        str, typer.Argument(help="An exported folder, the console's export zip, or a custody API URL")
    ],
    public_key: Annotated[
        list[str],
        typer.Option(
            "--public-key",
            help="A verifier key you trust, or a file with it. Repeat it for every key the log has used "
            "(after a key rotation, GET /ledger/public-keys): the key id on each signature selects the key",
        ),
    ],
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option("--checkpoint", help="An older signed checkpoint to check consistency with"),
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", envvar="CUSTODY_TOKEN", help="Auditor token when SOURCE is a URL")
    ] = None,
) -> None:
    """Verify a ledger offline. Exit 0 when intact, 1 naming the first bad index, 2 for bad input."""
    try:
        trusted = [load_verifier(key) for key in public_key]
    except (NoteError, OSError) as exc:
        err.print(f"[red]--public-key: {exc}[/red]")
        raise typer.Exit(EXIT_USAGE) from exc
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(source)
        if source.startswith(("http://", "https://")):
            folder = Path(tmp)
            _download(source, token, folder)
        elif folder.is_file() and zipfile.is_zipfile(folder):
            folder = _unzip(folder, Path(tmp))
        elif not folder.is_dir():
            err.print(f"[red]{source} is neither an exported folder, an export zip nor an http(s) URL[/red]")
            raise typer.Exit(EXIT_USAGE)
        with _progress() as bar:
            task = bar.add_task("verifying entries", total=None)
            try:
                report = verify_export(
                    folder, trusted, older_checkpoints=checkpoint or (),
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )  # fmt: skip
            except LedgerVerificationError as exc:
                bar.stop()
                console.print(f"[red]FAIL[/red] {escape(str(exc))}")
                raise typer.Exit(EXIT_TAMPERED) from exc
    for line in report.steps:
        console.print(f"[green]ok[/green]   {escape(line)}")
    console.print(
        f"[green]INTACT[/green] {report.origin}: {report.tree_size} entries, root {report.root_hex}, "
        f"{len(report.checkpoints_checked)} older checkpoint"
        f"{'' if len(report.checkpoints_checked) == 1 else 's'} consistent"
        + (
            f", {len(report.checkpoints_unchecked)} signed by a key you did not pass (not checked)"
            if report.checkpoints_unchecked
            else ""
        )
    )
