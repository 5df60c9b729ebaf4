"""`make rehearse`: custody deployed as a department runs it, scaled out, rehearsed end to end here.

What runs (every process its own, as in production; every connection on TLS, certificates from a
test CA, devstack/pki.py):
- PostgreSQL: a cluster of its own accepting TLS only (verify-full), two password roles: the
  schema's owner runs `custody migrate --app-role`; the API and workers log in as the application
  role, which may read and append the ledger but not change it;
- Temporal (the embedded dev server) behind Debian's nginx demanding a client certificate (mTLS);
  SeaweedFS S3 over https; the embedded SMTP server with STARTTLS required and AUTH; an RFC 3161
  timestamp authority over https (reports are PAdES B-T, signed with an agency certificate);
- 2 API replicas (`custody serve`) and 2 workers (`custody worker`) in production mode, every secret
  from a file (`CUSTODY_<NAME>_FILE`);
- nginx as the TLS reverse proxy in front of both replicas, setting X-Forwarded-For.

What it does, all through the proxy over https: alert -> owners notified -> consent -> upload ->
verify -> attach for every camera, twice; the second time it kills one API replica and one worker
(SIGKILL) midway, the checkpointer's leader among them; then the custody report and an offline
ledger verification. It checks every request was attached exactly once, the report's signature,
that throttles count the real client address (the proxy is trusted by setting only), that one
process signs checkpoints and another takes over, /metrics, worker metrics and JSON logs, the
application role's limits, and that the ledger verifies; it prints a summary with timings and every
answer a person had to retry, and exits 0 only when every check holds.

    python -m devstack.rehearse [--cameras 16] [--keep]

`--single` runs the same story against one API and one worker started as `make run` starts them
(SQLite, no proxy, no TLS), for the figures beside the scaled-out ones.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from custody.devsecrets import ensure_dev_secrets, write_private
from custody.settings import SECRET_FIELDS
from devstack.pki import TestCA
from devstack.procs import Child, free_port, wait_until
from devstack.servers import S3Identity, tsa_child, wait_tsa
from devstack.smtp import SmtpTls
from devstack.stack import EmbeddedServers
from devstack.tls import GrpcTlsProxy, TlsPostgres, grpc_tls_proxy

ROOT = Path(__file__).resolve().parent.parent

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


#: Every answer a person had to try again after (printed in the summary: what the kills cost).
RETRIED: list[str] = []


class RehearsalFailed(Exception):
    """A check did not hold; the message says which and what was seen."""


@dataclass
class Timings:
    phases: list[tuple[str, float]] = field(default_factory=list)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        print(f"... {name}", flush=True)
        t0 = time.perf_counter()
        yield
        self.phases.append((name, time.perf_counter() - t0))
        print(f"    {name}: {self.phases[-1][1]:.1f} s", flush=True)


@dataclass
class Check:
    name: str
    ok: bool
    seen: str


# --- the story, through any base URL --------------------------------------------------------------


def client_at(base: str, *, source: str = "127.0.0.1", verify: ssl.SSLContext | bool = True) -> httpx.Client:
    """An HTTP client whose connections come from `source` (a loopback address: each stands for a
    different person's machine behind the proxy)."""
    transport = httpx.HTTPTransport(local_address=source, verify=verify)
    return httpx.Client(base_url=base, transport=transport, timeout=120)


def retrying(
    what: str,
    call: Callable[[], httpx.Response],
    ok: tuple[int, ...],
    tries: int = 5,
    again: tuple[int, ...] = (502, 503, 504),
) -> httpx.Response:
    """What a person does when the page errors while a replica dies: try again, a few times."""
    last = ""
    for attempt in range(tries):
        try:
            resp = call()
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if resp.status_code in ok:
                return resp
            last = f"{resp.status_code} {resp.text[:300]}"
            if resp.status_code not in again:
                break
        RETRIED.append(f"{what}: {' '.join(last.split())[:140]}")
        time.sleep(min(3, 1 + attempt))
    raise RehearsalFailed(f"{what}: {last}")


class Inbox:
    """The consent link of each owner, read from the embedded SMTP server's Maildir."""

    def __init__(self, maildir: Path) -> None:
        self.new = maildir / "new"
        self.links: dict[str, str] = {}
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def link(self, address: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for entry in os.scandir(self.new) if self.new.exists() else []:
                    if entry.name in self.seen:
                        continue
                    self.seen.add(entry.name)
                    msg = email.message_from_bytes(Path(entry.path).read_bytes())
                    body = next(
                        (
                            part.get_payload(decode=True).decode()  # type: ignore[union-attr]
                            for part in msg.walk()
                            if part.get_content_type() == "text/plain"
                        ),
                        "",
                    )
                    for word in body.split():
                        if "/consent/" in word:
                            self.links.setdefault(str(msg["To"]), word.strip("<>()."))
                if address in self.links:
                    return self.links[address]
            time.sleep(0.2)
        raise RehearsalFailed(f"no consent email reached {address} within {timeout:.0f} s")


@dataclass
class StoryResult:
    case_id: str
    request_ids: list[str]
    timings: Timings
    report_bytes: int = 0
    report: bytes = b""


def run_story(
    *,
    base: str,
    verify: ssl.SSLContext | bool,
    investigator: tuple[str, str],
    maildir: Path,
    cameras: int,
    timings: Timings,
    midway: Callable[[], None] | None = None,
    lat: float = 38.9,
    label: str = "",
) -> StoryResult:
    """The full story a department lives: cameras registered, an alert, every owner consents and
    uploads, every file verified and attached; the custody report downloaded."""
    staff = client_at(base, verify=verify)
    token = retrying(
        "investigator sign-in",
        lambda: staff.post("/auth/token", data={"username": investigator[0], "password": investigator[1]}),
        (200,),
    ).json()["access_token"]
    staff.headers["Authorization"] = f"Bearer {token}"
    run = uuid.uuid4().hex[:6]
    owners: list[str] = []
    with timings.phase(f"{label}register {cameras} cameras"):
        for i in range(cameras):
            address = f"owner{i}-{run}@example.org"
            owner = staff.post("/owners", json={"name": f"Owner {i}", "email": address})
            if owner.status_code != 201:
                raise RehearsalFailed(f"owner registration: {owner.status_code} {owner.text[:300]}")
            cam = staff.post(
                "/cameras",
                json={
                    "owner_id": owner.json()["id"],
                    "label": f"Doorbell {i}, {100 + i} Main St",
                    "lat": lat + i * 0.00005,
                    "lon": -77.03,
                    "kind": "registered",
                },
            )
            if cam.status_code != 201:
                raise RehearsalFailed(f"camera registration: {cam.status_code} {cam.text[:300]}")
            owners.append(address)
    with timings.phase(label + "alert -> every owner emailed"):
        case_id = staff.post("/cases", json={"title": f"Rehearsal {run}"}).json()["id"]
        end = datetime.now(UTC) - timedelta(minutes=5)
        alert = staff.post(
            f"/cases/{case_id}/alerts",
            json={
                "lat": lat,
                "lon": -77.03,
                "radius_m": 500,
                "description": "Rehearsal: robbery at the corner",
                "window_start": (end - timedelta(minutes=20)).isoformat(),
                "window_end": end.isoformat(),
            },
        )
        if alert.status_code != 202:
            raise RehearsalFailed(f"alert: {alert.status_code} {alert.text[:300]}")
        request_ids = [r["id"] for r in alert.json()["requests"]]
        if len(request_ids) != cameras:
            raise RehearsalFailed(f"the alert asked {len(request_ids)} cameras, expected {cameras}")
        inbox = Inbox(maildir)
        links = {address: inbox.link(address) for address in owners}

    done = 0
    done_lock = threading.Lock()
    half = threading.Event()

    def owner_answers(address: str) -> None:
        nonlocal done
        token = links[address].rsplit("/consent/", 1)[1]
        # What a recorder exports: an MP4 (ftyp box first), 256 KiB of it.
        clip = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(256 * 1024)
        # Each owner on their own machine: a loopback address of their own.
        n = owners.index(address)
        with client_at(base, source=f"127.0.1.{10 + n}", verify=verify) as owner:
            retrying(
                "consent page",
                lambda: owner.get(f"/consent/{token}", headers={"Accept": "text/html"}),
                (200,),
            )
            retrying(
                "consent",
                lambda: owner.post(f"/consent/{token}/decision", json={"decision": "consent"}),
                (200,),  # the same answer again gets the same outcome, never "already answered"
                tries=10,
            )
            retrying(
                "upload",
                lambda: owner.put(
                    f"/consent/{token}/files/doorbell-{n}.mp4",
                    content=clip,
                    headers={"Content-Type": "video/mp4"},
                ),
                (201,),
            )
            # An upload cut off by a dying replica is "still arriving" until the sweeper sees it dead
            # (CUSTODY_UPLOAD_STALE_S): the page says so, and the owner presses Done again. A Done
            # whose answer was lost with a replica may find the request attached already (410).
            retrying(
                "done",
                lambda: owner.post(f"/consent/{token}/complete"),
                (202, 410),
                tries=30,
                again=(409, 502, 503, 504),
            )
        with done_lock:
            done += 1
            if done >= len(owners) // 2:
                half.set()

    phase = label + "owners consent and upload" + (" (kills midway)" if midway else "")
    with timings.phase(phase), ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(owner_answers, a) for a in owners]
        if midway is not None:
            while not half.wait(0.2):
                if any(f.done() and f.exception() for f in futures):
                    break  # an owner failed: its error is raised below
            else:
                midway()
        for f in futures:
            f.result()

    with timings.phase(label + "every request verified and attached"):
        deadline = time.monotonic() + 300
        while True:
            statuses = Counter(
                r["status"]
                for r in retrying(
                    "request list", lambda: staff.get(f"/cases/{case_id}/requests"), (200,)
                ).json()
            )
            if statuses["attached"] == cameras:
                break
            if time.monotonic() > deadline:
                raise RehearsalFailed(f"not every request attached within 300 s: {dict(statuses)}")
            time.sleep(0.5)

    result = StoryResult(case_id, request_ids, timings)
    with timings.phase(label + "custody report (PDF, signed)"):
        report = retrying("custody report", lambda: staff.get(f"/cases/{case_id}/custody-report.pdf"), (200,))
        if not report.content.startswith(b"%PDF"):
            raise RehearsalFailed("the custody report is not a PDF")
        result.report_bytes = len(report.content)
        result.report = report.content
    staff.close()
    return result


# --- the scaled-out deployment ---------------------------------------------------------------------


NGINX_CONF = """\
worker_processes 1;
{user}
pid {root}/nginx/nginx.pid;
error_log {root}/logs/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log {root}/logs/nginx-access.log;
  client_body_temp_path {root}/nginx/body;
  proxy_temp_path {root}/nginx/proxy;
  fastcgi_temp_path {root}/nginx/fastcgi;
  uwsgi_temp_path {root}/nginx/uwsgi;
  scgi_temp_path {root}/nginx/scgi;
  client_max_body_size 0;
  proxy_request_buffering off;
  upstream custody_api {{
{servers}
    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {{
      proxy_pass http://custody_api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_next_upstream error timeout;
      proxy_connect_timeout 2s;
      proxy_read_timeout 300s;
    }}
  }}
}}
"""


def _live(base: str) -> Callable[[], bool]:
    return lambda: httpx.get(f"{base}/health/live", timeout=2).status_code == 200


def _said(child: Child, text: str) -> Callable[[], bool]:
    return lambda: text in child.tail(200)


class Deployment:
    """Everything of the scaled-out rehearsal, started in order and stopped in reverse."""

    def __init__(self, root: Path, *, replicas: int = 2, workers: int = 2) -> None:
        self.root = root
        self.logs = root / "logs"
        self.children: list[Child] = []
        self.named: dict[str, Child] = {}  # the embedded servers
        self.ca = TestCA(root / "pki")
        self.temporal_client = self.ca.client("temporal-client", "custody api and workers")
        self.ports = {
            "temporal": free_port(),
            "s3": free_port(grpc_pair=True),
            "smtp": free_port(),
            "proxy": free_port(),
            "tsa": free_port(),
        }
        self.api_ports = [0] * replicas  # each picked just before its replica starts (_start_bound)
        self.apis: list[Child] = []
        self.workers: list[Child] = []
        self.n_workers = workers
        self.worker_metrics = [0] * workers  # likewise for each worker's metrics port
        tag = uuid.uuid4().hex[:10]
        self.db_name = f"custody_{tag}"
        self.db_owner, self.db_app = f"custody_owner_{tag}", f"custody_app_{tag}"
        self.pg_password, self.owner_password, self.app_password = (uuid.uuid4().hex for _ in range(3))
        self.owner_url = self.db_url = ""  # once the database exists
        self.home = root / "home"
        self.maildir = root / "mail"  # the embedded SMTP server's Maildir (EmbeddedServers.maildir)
        self.secrets_dir = root / "secrets"
        self.env: dict[str, str] = {}
        self.temporal_proxy: GrpcTlsProxy | None = None
        self.pg: TlsPostgres | None = None

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.ports['proxy']}"

    def verify(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca.ca_file))

    def _write_secrets(self) -> None:
        """Secrets as a department keeps them: one file each, readable by custody only."""
        generated = ensure_dev_secrets(self.root / "generated")
        for field_name in SECRET_FIELDS.values():
            path = self.secrets_dir / field_name
            write_private(path, generated[field_name])
            self.env[f"CUSTODY_{field_name.upper()}_FILE"] = str(path)
        self.metrics_token = uuid.uuid4().hex
        write_private(self.secrets_dir / "metrics_token", self.metrics_token)
        self.env["CUSTODY_METRICS_TOKEN_FILE"] = str(self.secrets_dir / "metrics_token")
        self.s3_identity = S3Identity(generated["s3_access_key"], generated["s3_secret_key"])
        self.ledger_key = generated["ledger_signing_key"]
        # Reports signed with the agency's certificate from its PKI (here the test CA), not the
        # self-signed one embedded mode makes.
        signer = self.ca.document_signer("report-signer", "Metropolitan Police custody reports", "MPD")
        for name, pem in (("report_signing_cert", signer.cert_pem), ("report_signing_key", signer.key_pem)):
            write_private(self.secrets_dir / name, pem)
        # The mail relay's password (the embedded SMTP server checks it, STARTTLS required).
        self.smtp_password = uuid.uuid4().hex
        write_private(self.secrets_dir / "smtp_password", self.smtp_password)
        self.env["CUSTODY_SMTP_PASSWORD_FILE"] = str(self.secrets_dir / "smtp_password")

    def _base_env(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1",
                "CUSTODY_MODE": "production",
                "CUSTODY_HOME": str(self.home),
                "CUSTODY_TEMPORAL_PORT": str(self.ports["temporal"]),
                "CUSTODY_TEMPORAL_TLS": "true",
                "CUSTODY_TEMPORAL_CA_FILE": str(self.ca.ca_file),
                "CUSTODY_TEMPORAL_CLIENT_CERT_FILE": str(self.temporal_client.cert_file),
                "CUSTODY_TEMPORAL_CLIENT_KEY_FILE": str(self.temporal_client.key_file),
                "CUSTODY_SMTP_SECURITY": "starttls",
                "CUSTODY_SMTP_USERNAME": "custody",
                "CUSTODY_SMTP_CA_FILE": str(self.ca.ca_file),
                "CUSTODY_TSA_URL": f"https://127.0.0.1:{self.ports['tsa']}/",
                "CUSTODY_TSA_CA_FILE": str(self.ca.ca_file),
                "CUSTODY_S3_SECURE": "true",
                "CUSTODY_S3_CA_FILE": str(self.ca.ca_file),
                "CUSTODY_S3_PORT": str(self.ports["s3"]),
                "CUSTODY_SMTP_PORT": str(self.ports["smtp"]),
                "CUSTODY_PUBLIC_URL": self.base,
                "CUSTODY_TRUSTED_PROXIES": "127.0.0.1",
                "CUSTODY_EVIDENCE_RETENTION_DAYS": "1",
                "CUSTODY_ACTIVITY_HEARTBEAT_S": "5",
                "CUSTODY_LEDGER_CHECKPOINT_INTERVAL_S": "2",
                "CUSTODY_RELAY_INTERVAL_S": "2",
                "CUSTODY_LOGIN_MAX_FAILURES": "5",
                "CUSTODY_S3_MIN_FREE_MB": "0",
                "CUSTODY_UPLOAD_HEARTBEAT_S": "1",
                "CUSTODY_UPLOAD_STALE_S": "6",
            }
        )
        self.env = env | self.env

    def custody(
        self, *args: str, stdin: str | None = None, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the `custody` command as an operator would, with the deployment's environment."""
        argv = [sys.executable, "-m", "cli.main", *args]
        done = subprocess.run(
            argv,
            env=self.env | (env or {}),
            cwd=ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and done.returncode != 0:
            raise RehearsalFailed(
                f"`custody {' '.join(args)}` exited {done.returncode}: {done.stderr[-1500:]}"
            )
        return done

    def start(self, timings: Timings) -> None:
        with timings.phase("start Temporal, SeaweedFS, SMTP and the database"):
            self._write_secrets()
            self._base_env()
            smtp_cert = self.ca.server("smtp")
            self.servers = EmbeddedServers(
                self.root, self.s3_identity, s3_port=self.ports["s3"], smtp_port=self.ports["smtp"],
                min_free_mb=0, children=self.named, s3_cert=self.ca.server("s3"), ca_file=self.ca.ca_file,
                smtp_tls=SmtpTls(
                    cert_file=smtp_cert.cert_file, key_file=smtp_cert.key_file, require_starttls=True,
                    auth_user="custody", auth_password=self.smtp_password,
                ),
                smtp_password_file=self.secrets_dir / "smtp_password",
            ).start()  # fmt: skip
            # An RFC 3161 timestamp authority over https: reports are PAdES B-T.
            tsa_cert, tsa_tls = self.ca.timestamping("tsa"), self.ca.server("tsa-https")
            tsa = tsa_child(
                port=self.ports["tsa"], cert=tsa_cert.cert_file, key=tsa_cert.key_file,
                log=self.logs / "tsa.log", chain=self.ca.ca_file, tls=(tsa_tls.cert_file, tsa_tls.key_file),
            )  # fmt: skip
            self.children.append(tsa.start())
            wait_tsa(tsa, port=self.ports["tsa"])
            # Temporal behind a TLS terminator that demands a client certificate (mTLS), as a
            # Temporal cluster with TLS or Temporal Cloud does.
            self.temporal_proxy = grpc_tls_proxy(
                self.root / "temporal-tls", upstream=self.servers.temporal_port, port=self.ports["temporal"],
                cert=self.ca.server("temporal"), client_ca=self.ca.ca_file,
            )  # fmt: skip
            # PostgreSQL of its own, TLS only, password authentication.
            self.pg = TlsPostgres(self.ca.server("postgres"), password=self.pg_password).start()
            self._create_database()
        with timings.phase("custody migrate --app-role (as the schema's owner)"):
            out = self.custody(
                "migrate", "--app-role", self.db_app, env={"CUSTODY_DATABASE_URL": self.owner_url}
            )
            print("    " + out.stdout.strip().replace("\n", "\n    "))
        with timings.phase(f"{len(self.api_ports)} API replicas, {self.n_workers} workers, nginx (TLS)"):
            # Started one by one, each on a port picked just before it binds, and once more on a
            # fresh port when another process took that one meanwhile (the servers above pick their
            # internal ports too): a port race is this machine's, not a failure of custody.
            for i in range(len(self.api_ports)):
                self.apis.append(self._start_bound(i, "api"))
            for i in range(self.n_workers):
                self.workers.append(self._start_bound(i, "worker"))
            self._start_nginx()
            wait_until(
                "nginx",
                lambda: (
                    httpx.get(f"{self.base}/health/live", verify=self.verify(), timeout=2).status_code == 200
                ),
                timeout_s=20,
            )

    def _child(self, i: int, kind: str) -> Child:
        if kind == "api":
            argv = ["serve", "--host", "127.0.0.1", "--port", str(self.api_ports[i])]
            env, grace = self.env, 10.0
        else:
            argv = ["worker"]
            env, grace = self.env | {"CUSTODY_WORKER_METRICS_PORT": str(self.worker_metrics[i])}, 15.0
        return Child(
            f"{kind}-{i + 1}", [sys.executable, "-m", "cli.main", *argv], self.logs / f"{kind}-{i + 1}.log",
            env=env, cwd=ROOT, stop_grace_s=grace,
        )  # fmt: skip

    def _start_bound(self, i: int, kind: str, tries: int = 3) -> Child:
        """Start replica or worker `i` and wait until it serves; on 'address already in use' (its
        port, or a worker's metrics port, taken since it was picked) pick another and start again."""
        for attempt in range(tries):
            if kind == "api":
                self.api_ports[i] = free_port()
            else:
                self.worker_metrics[i] = free_port()
            child = self._child(i, kind).start()
            ready = (
                _live(f"http://127.0.0.1:{self.api_ports[i]}")
                if kind == "api"
                else _said(child, "worker ready")
            )
            try:
                wait_until(child.name, ready, timeout_s=60, child=child)
            except RuntimeError:
                if "already in use" not in child.tail(30) or attempt == tries - 1:
                    raise
                print(f"    {child.name}: its port was taken meanwhile; starting it on another", flush=True)
                continue
            self.children.append(child)
            return child
        raise AssertionError("unreachable")

    def _start_nginx(self) -> None:
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.root / "nginx" / sub).mkdir(parents=True, exist_ok=True)
        cert = self.ca.server("proxy", ("127.0.0.1", "localhost"))
        conf = self.root / "nginx" / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                root=self.root,
                user="user root;" if os.geteuid() == 0 else "",
                port=self.ports["proxy"],
                cert=cert.cert_file,
                key=cert.key_file,
                servers="\n".join(
                    f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;" for p in self.api_ports
                ),
            )
        )
        nginx = Child(
            "nginx", [NGINX, "-p", str(self.root / "nginx"), "-c", str(conf), "-g", "daemon off;"],
            self.logs / "nginx.log", stop_grace_s=5,
        )  # fmt: skip
        self.children.append(nginx.start())

    def _create_database(self) -> None:
        """Two roles, as in production: the schema's owner migrates; the API and workers log in as an
        application role that owns nothing and may only read and append the ledger
        (custody/dbroles.py)."""
        assert self.pg is not None
        admin = sa.create_engine(self.pg.url(ca_file=self.ca.ca_file), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for role, password in ((self.db_owner, self.owner_password), (self.db_app, self.app_password)):
                conn.execute(
                    sa.text(f"CREATE ROLE \"{role}\" LOGIN NOCREATEDB NOCREATEROLE PASSWORD '{password}'")
                )
            conn.execute(sa.text(f'CREATE DATABASE "{self.db_name}" OWNER "{self.db_owner}"'))
        admin.dispose()
        base = sa.engine.make_url(self.pg.url(ca_file=self.ca.ca_file, database=self.db_name))
        self.owner_url = base.set(username=self.db_owner, password=self.owner_password).render_as_string(
            hide_password=False
        )
        self.db_url = base.set(username=self.db_app, password=self.app_password).render_as_string(
            hide_password=False
        )
        self.env["CUSTODY_DATABASE_URL"] = self.db_url

    def leader(self) -> str | None:
        """The process that signs checkpoints now, by name (`custody ledger leader` says host:pid)."""
        done = self.custody("ledger", "leader", check=False)
        if done.returncode != 0:
            return None
        pid = int(done.stdout.strip().rsplit(":", 1)[-1])
        return next((c.name for c in self.apis + self.workers if c.alive() and c.pid == pid), f"pid {pid}")

    def kill(self, child: Child) -> None:
        """SIGKILL: no goodbye, as when a machine dies."""
        assert child.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.proc.pid, signal.SIGKILL)
        child.proc.wait(10)

    def stop(self) -> None:
        for child in reversed(self.children + list(self.named.values())):
            child.stop()
        if self.temporal_proxy is not None:
            self.temporal_proxy.stop()
        if self.pg is not None:
            self.pg.stop()


def rehearse(args: argparse.Namespace) -> int:
    timings = Timings()
    checks: list[Check] = []
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="custody-rehearse-"))
    dep = Deployment(root)
    try:
        dep.start(timings)
        users = {}
        with timings.phase("operator creates staff accounts (custody users create)"):
            people = {"investigator": ("Dana Reyes", "Detective"), "auditor": ("Lee Park", "Records Auditor")}
            for role, (full_name, title) in people.items():
                name, password = f"{role}-{uuid.uuid4().hex[:4]}", uuid.uuid4().hex
                dep.custody(
                    "users",
                    "create",
                    "--role",
                    role,
                    "--agency",
                    "MPD",
                    "--name",
                    full_name,
                    "--title",
                    title,
                    "--password-stdin",
                    name,
                    stdin=password + "\n",
                )
                users[role] = (name, password)
        story = run_story(
            base=dep.base, verify=dep.verify(), investigator=users["investigator"], maildir=dep.maildir,
            cameras=args.cameras, timings=timings, label="story 1: ",
        )  # fmt: skip
        checks.extend(_check_story(dep, story, users["auditor"]))
        checks.append(_check_report_signature(dep, story))
        (root / "custody-report-story-1.pdf").write_bytes(story.report)  # kept with --keep
        killed: list[str] = []

        leaders: list[str | None] = [dep.leader()]

        def midway() -> None:
            # One replica and one worker, the checkpointer's leader among them: its work moves too.
            api = next((c for c in dep.apis if c.name == leaders[0]), dep.apis[0])
            worker = next((c for c in dep.workers if c.name == leaders[0]), dep.workers[0])
            for child in (api, worker):
                dep.kill(child)
                killed.append(child.name)
            print(f"    killed {api.name} and {worker.name} (SIGKILL); the checkpointer led in {leaders[0]}")

        story = run_story(
            base=dep.base, verify=dep.verify(), investigator=users["investigator"], maildir=dep.maildir,
            cameras=args.cameras, timings=timings, midway=midway, lat=38.95, label="story 2: ",
        )  # fmt: skip
        checks.append(
            Check("one API replica and one worker killed midway", len(killed) == 2, ", ".join(killed))
        )
        checks.append(_check_leader(dep, leaders[0], killed))
        checks.extend(_check_observability(dep))
        checks.extend(_check_story(dep, story, users["auditor"]))
        checks.extend(_check_throttle(dep, users["investigator"]))
        checks.append(_check_roles(dep))
        with timings.phase("ledger verified offline (custody ledger verify, through the proxy)"):
            checks.append(_check_ledger(dep, users["auditor"]))
    except RehearsalFailed as exc:
        checks.append(Check("story", False, str(exc)))
    except Exception as exc:  # the summary must still say what happened
        import traceback

        traceback.print_exc()
        checks.append(Check("rehearsal ran to its end", False, f"{type(exc).__name__}: {exc}"))
    finally:
        total = time.perf_counter() - started
        print_summary(timings, checks, total, dep)
        if args.keep:
            print(f"kept: {root} (processes stopped)")
        dep.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if checks and all(c.ok for c in checks) else 1


def single(args: argparse.Namespace) -> int:
    """The same story against `custody dev`, the one-machine stack `make run` starts (one API, one
    worker, SQLite, no proxy, no TLS), for the figures beside the scaled-out ones."""
    timings = Timings()
    root = Path(tempfile.mkdtemp(prefix="custody-single-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    ports = {"API": free_port(), "TEMPORAL": free_port(), "TEMPORAL_UI": free_port(), "SMTP": free_port()}
    env.update({f"CUSTODY_{k}_PORT": str(v) for k, v in ports.items()})
    env.update(
        CUSTODY_HOME=str(root / "home"), CUSTODY_S3_PORT=str(free_port(grpc_pair=True)),
        CUSTODY_S3_MIN_FREE_MB="0", CUSTODY_EVIDENCE_RETENTION_DAYS="1", PYTHONPATH=str(ROOT),
    )  # fmt: skip
    launcher = Child(
        "custody dev", [sys.executable, "-m", "cli.main", "dev", "--headless"], root / "dev.log",
        env=env, cwd=ROOT, stop_grace_s=30,
    )  # fmt: skip
    started = time.perf_counter()
    checks: list[Check] = []
    try:
        with timings.phase("make run (custody dev): whole stack up"):
            launcher.start()
            facts_file = root / "home" / "dev.json"
            wait_until("custody dev", facts_file.exists, timeout_s=180, child=launcher)
            facts = json.loads(facts_file.read_text())
        login = facts["users"]["investigator"]
        story = run_story(
            base=facts["api"], verify=False, investigator=(login["username"], login["password"]),
            maildir=Path(facts["maildir"]), cameras=args.cameras, timings=timings,
        )  # fmt: skip
        checks.append(
            Check("story through one API and one worker", True, f"{len(story.request_ids)} attached")
        )
    except (RehearsalFailed, TimeoutError, RuntimeError) as exc:
        checks.append(Check("story", False, str(exc)))
    finally:
        total = time.perf_counter() - started
        launcher.stop()
        print("\n=== the same story on `make run` (one process each, SQLite, no proxy) ===")
        for name, secs in timings.phases:
            print(f"  {secs:7.1f} s  {name}")
        print(f"  {total:7.1f} s  total")
        for c in checks:
            print(f"  [{'PASS' if c.ok else 'FAIL'}] {c.name}: {c.seen}")
        shutil.rmtree(root, ignore_errors=True)
    return 0 if checks and all(c.ok for c in checks) else 1


def _auditor(dep: Deployment, auditor: tuple[str, str]) -> httpx.Client:
    client = client_at(dep.base, verify=dep.verify())
    token = client.post("/auth/token", data={"username": auditor[0], "password": auditor[1]}).json()[
        "access_token"
    ]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def _ledger_entries(client: httpx.Client) -> list[dict[str, Any]]:
    """Every entry up to the current checkpoint's tree size. Not "until a page comes back empty":
    each query of the log is itself an entry (`ledger_queried`), so the end moves as one reads."""
    note = client.get("/ledger/checkpoint")
    if note.status_code != 200:
        raise RehearsalFailed(f"GET /ledger/checkpoint answered {note.status_code}")
    size = int(note.text.splitlines()[1])
    out: list[dict[str, Any]] = []
    while len(out) < size:
        end = min(size, len(out) + 1000)
        page = client.get("/ledger/entries", params={"start": len(out), "end": end})
        if page.status_code != 200 or not page.json():
            raise RehearsalFailed(f"GET /ledger/entries {len(out)}..{end} answered {page.status_code}")
        out.extend(e["entry"] for e in page.json())
    return out


def _check_story(dep: Deployment, story: StoryResult, auditor: tuple[str, str]) -> list[Check]:
    client = _auditor(dep, auditor)
    try:
        entries = _ledger_entries(client)
    finally:
        client.close()
    attached = Counter(e.get("request_id") for e in entries if e["type"] == "evidence_attached")
    per_request = [attached.get(r, 0) for r in story.request_ids]
    return [
        Check(
            "every request attached exactly once (ledger evidence_attached per request)",
            all(n == 1 for n in per_request),
            f"{len(story.request_ids)} requests, attached counts {sorted(Counter(per_request).items())}",
        ),
        Check(
            "custody report downloaded through the proxy",
            story.report_bytes > 0,
            f"{story.report_bytes} bytes",
        ),
    ]


def _check_report_signature(dep: Deployment, story: StoryResult) -> Check:
    """What a court's validator sees: PAdES, intact, chained to the agency's CA, with an RFC 3161
    timestamp from the TSA (B-T), validated against nothing but the CA's root."""
    import io

    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    root = asn1_x509.Certificate.load(dep.ca.cert.public_bytes(serialization.Encoding.DER))
    [sig] = PdfFileReader(io.BytesIO(story.report)).embedded_signatures
    status = validate_pdf_signature(
        sig,
        signer_validation_context=ValidationContext(trust_roots=[root]),
        ts_validation_context=ValidationContext(trust_roots=[root]),
    )
    ts = status.timestamp_validity
    ok = bool(
        status.intact and status.valid and status.trusted and ts and ts.intact and ts.valid and ts.trusted
    )
    signer = status.signing_cert.subject.native.get("common_name", "?")
    stamped = f"timestamped {ts.timestamp.isoformat()} by the TSA" if ts else "NO timestamp"
    return Check(
        "custody report signed PAdES B-T with the agency's certificate",
        ok and sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached",
        f"signer '{signer}', intact {status.intact}, trusted {status.trusted}, {stamped}",
    )


def _check_leader(dep: Deployment, before: str | None, killed: list[str]) -> Check:
    """One checkpointer for the deployment: one process leads; when it dies another takes over,
    and checkpoints keep coming (within CUSTODY_LEDGER_CHECKPOINT_INTERVAL_S while entries arrive)."""
    deadline = time.monotonic() + 30
    after = dep.leader()
    while (after is None or after in killed) and time.monotonic() < deadline:
        time.sleep(0.5)
        after = dep.leader()
    leading = []
    for child in dep.apis + dep.workers:
        lines = [line for line in child.tail(5000).splitlines() if "checkpointer: " in line]
        if child.alive() and lines and "leading" in lines[-1]:
            leading.append(child.name)
    ok = before is not None and after is not None and after not in killed and leading == [after]
    return Check(
        "one checkpointer for the deployment, taken over when its process dies",
        ok,
        f"before the kills {before}; after {after}; live processes whose last word is 'leading': {leading}",
    )


def _check_observability(dep: Deployment) -> list[Check]:
    """/metrics through the proxy (bearer token), the workers' Temporal SDK metrics, JSON log lines."""
    with client_at(dep.base, verify=dep.verify()) as client:
        refused = client.get("/metrics").status_code
        scrape = client.get("/metrics", headers={"Authorization": f"Bearer {dep.metrics_token}"})
    wanted = ("custody_http_requests_total", "custody_upload_bytes_total", "custody_ledger_tree_size")
    lines = [line for line in scrape.text.splitlines() if line.startswith(wanted)]
    live_worker = next(i for i, w in enumerate(dep.workers) if w.alive())
    worker = httpx.get(f"http://127.0.0.1:{dep.worker_metrics[live_worker]}/metrics", timeout=5).text
    temporal = [line for line in worker.splitlines() if line.startswith("temporal_") and "{" in line]
    json_lines, sample = 0, ""
    for line in (dep.logs / f"{dep.apis[-1].name}.log").read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        json_lines += 1
        if not sample and record.get("http_request_id") and record.get("case_id"):
            sample = line
    return [
        Check(
            "Prometheus /metrics through the proxy (token required)",
            refused in (401, 403) and scrape.status_code == 200 and len(lines) > 0,
            f"without token {refused}; with token {scrape.status_code}, e.g. {lines[0] if lines else '-'}",
        ),
        Check(
            "worker metrics include the Temporal SDK's",
            len(temporal) > 0,
            f"{len(temporal)} temporal_* samples on worker-{live_worker + 1}, "
            f"e.g. {temporal[0] if temporal else '-'}",
        ),
        Check(
            "JSON logs with request and case ids",
            json_lines > 0 and bool(sample),
            f"{json_lines} lines; {sample[:300]}",
        ),
    ]


def _check_roles(dep: Deployment) -> Check:
    """The credentials the API and workers hold cannot change a ledger row, whatever SQL they send."""
    app = sa.create_engine(dep.db_url)
    refused = []
    try:
        for statement in (
            "UPDATE ledger_entries SET entry = entry",
            "DELETE FROM ledger_checkpoints",
            "ALTER TABLE ledger_entries DISABLE TRIGGER ALL",  # the append-only trigger (migration 0002)
        ):
            try:
                with app.begin() as conn:
                    conn.execute(sa.text(statement))
            except sa.exc.ProgrammingError as exc:
                refused.append(f"{statement.split()[0]}: {str(exc.orig).splitlines()[0]}")
    finally:
        app.dispose()
    return Check(
        "the application's database role cannot edit or delete ledger rows",
        len(refused) == 3,
        "; ".join(refused),
    )


def _check_throttle(dep: Deployment, investigator: tuple[str, str]) -> list[Check]:
    """20 failed logins from one person's address lock that address out, not everybody behind the
    proxy: the replicas count the client nginx saw (X-Forwarded-For from the trusted proxy)."""
    attacker = client_at(dep.base, source="127.0.2.66", verify=dep.verify())
    codes: Counter[int] = Counter()
    for i in range(25):
        codes[
            attacker.post("/auth/token", data={"username": f"nobody{i}", "password": "wrong"}).status_code
        ] += 1
    attacker.close()
    with client_at(dep.base, source="127.0.2.77", verify=dep.verify()) as other:
        ok = other.post(
            "/auth/token", data={"username": investigator[0], "password": investigator[1]}
        ).status_code
    return [
        Check(
            "login throttle keyed on the real client address",
            codes[429] > 0 and ok == 200,
            f"attacker 127.0.2.66: {dict(codes)}; another person at 127.0.2.77 signs in: {ok}",
        )
    ]


def _check_ledger(dep: Deployment, auditor: tuple[str, str]) -> Check:
    client = _auditor(dep, auditor)
    try:
        key = client.get("/ledger/public-key").text.strip()
        token = client.headers["Authorization"].split()[1]
    finally:
        client.close()
    env = dict(dep.env, SSL_CERT_FILE=str(dep.ca.ca_file))
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "ledger", "verify", dep.base, "--public-key", key,
         "--token", token],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return Check(
        "ledger verifies offline", done.returncode == 0, " | ".join(lines[-3:]) or done.stderr[-300:]
    )


def print_summary(timings: Timings, checks: list[Check], total: float, dep: Deployment) -> None:
    print("\n=== custody rehearsal ===")
    print(f"deployment: {len(dep.api_ports)} API replicas behind nginx (TLS) at {dep.base}, "
          f"{dep.n_workers} workers, PostgreSQL database {dep.db_name}")  # fmt: skip
    print("timings:")
    for name, secs in timings.phases:
        print(f"  {secs:7.1f} s  {name}")
    print(f"  {total:7.1f} s  total")
    print(f"answers the people had to try again after ({len(RETRIED)}):")
    for line in RETRIED:
        print(f"  {line}")
    print("checks:")
    for c in checks:
        print(f"  [{'PASS' if c.ok else 'FAIL'}] {c.name}: {c.seen}")
    verdict = "PASSED" if checks and all(c.ok for c in checks) else "FAILED"
    print(f"rehearsal {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cameras", type=int, default=16, help="cameras asked by each alert (default 16)")
    parser.add_argument("--keep", action="store_true", help="keep the rehearsal's folder (logs) afterwards")
    parser.add_argument(
        "--single", action="store_true", help="the same story on `make run`'s one-machine stack"
    )
    args = parser.parse_args()
    sys.exit(single(args) if args.single else rehearse(args))


if __name__ == "__main__":
    main()
