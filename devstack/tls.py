"""Real TLS endpoints in front of the embedded stack, for the tests and the rehearsal (`make rehearse`).

Why real servers: a client's TLS is only shown to work by a server that refuses it when it is wrong.
So Temporal is reached through Debian's nginx terminating TLS for gRPC (optionally requiring a client
certificate from the test CA, or an `authorization: Bearer` API key as Temporal Cloud does),
SeaweedFS serves S3 over https itself (`seaweed_child(..., cert_file=, key_file=)` in
devstack/servers.py), and
PostgreSQL runs as a throwaway cluster with `ssl=on` and only `hostssl` lines in pg_hba.conf, so the
machine's own server and its configuration are never touched.

Certificates come from devstack/pki.py (`TestCA`). Every process here is a `Child`: its own process
group, killed with its parent, its log in a file.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from devstack.pki import Issued
from devstack.procs import Child, free_port, wait_until

NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/bin/nginx")
#: The operating-system account a PostgreSQL cluster runs as when we are root (it refuses root).
PG_OS_USER = "postgres"


def nginx_binary() -> str:
    """Debian's nginx (`make tls-tools` installs it when missing)."""
    for candidate in (*NGINX_CANDIDATES, shutil.which("nginx")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(
        "nginx is not installed; run `make tls-tools` (apt-get install -y nginx) for the TLS tests"
    )


def _tls_port_answers(port: int, timeout_s: float = 2.0) -> bool:
    """True once something on 127.0.0.1:`port` completes a TLS handshake. Readiness only: the
    certificate is what the clients under test check (without a client certificate nginx still
    finishes the handshake and refuses the request itself)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1"),
    ):
        return True


# --- Temporal behind nginx: gRPC over TLS --------------------------------------------------------


@dataclass
class GrpcTlsProxy:
    """nginx on 127.0.0.1:`port` terminating TLS (HTTP/2) and passing gRPC to 127.0.0.1:`upstream`.

    `client_ca`: require a client certificate issued by that CA (mTLS; `ssl_verify_client on`).
    `api_key`: refuse every call without `authorization: Bearer <api_key>` (gRPC status 16,
    UNAUTHENTICATED), as Temporal Cloud refuses a wrong key."""

    folder: Path
    port: int
    upstream: int
    cert: Issued
    client_ca: Path | None = None
    api_key: str | None = None
    child: Child | None = field(default=None, init=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.folder / "access.log"

    def config(self) -> str:
        """The whole nginx.conf: nothing of /etc/nginx is read, nothing outside `folder` written."""
        f = self.folder
        mtls = ""
        if self.client_ca:
            # A missing (496) or unacceptable (495) client certificate ends the handshake's request
            # with gRPC status 16 (UNAUTHENTICATED) and a reason, not an HTML page a gRPC client
            # can only report as a protocol error.
            mtls = (
                f"        ssl_client_certificate {self.client_ca};\n"
                "        ssl_verify_client on;\n"
                "        error_page 495 = @bad_client_cert;\n"
                "        error_page 496 = @no_client_cert;\n"
                "        location @no_client_cert {\n"
                "            default_type application/grpc;\n"
                + _grpc_refusal("a client certificate is required (mTLS)")
                + "        }\n"
                "        location @bad_client_cert {\n"
                "            default_type application/grpc;\n"
                + _grpc_refusal("the client certificate is not signed by a CA this server trusts")
                + "        }\n"
            )
        key_check = ""
        if self.api_key is not None:
            # A gRPC client reads the status from the trailers; an HTTP 401 alone would show up as
            # a vague "unknown" error instead of UNAUTHENTICATED.
            key_check = (
                f'            if ($http_authorization != "Bearer {self.api_key}") {{\n'
                + _grpc_refusal("missing or wrong API key", indent="    ")
                + "            }\n"
            )
        return (
            # One process, no master: it is the Child, so it dies with its parent (PDEATHSIG); a
            # master's workers would outlive a test run killed with -9. It serves loopback only.
            "master_process off;\n"
            f"pid {f / 'nginx.pid'};\n"
            f"error_log {f / 'error.log'} warn;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            # What the access log tells a test: the call, its status, and whether an API key came
            # and matched (never the key itself).
            "    log_format grpc '$remote_addr \"$request\" $status api_key=$api_key_seen';\n"
            "    map $http_authorization $api_key_seen {\n"
            '        "" none;\n'
            + (f'        "Bearer {self.api_key}" valid;\n' if self.api_key is not None else "")
            + "        default other;\n"
            "    }\n"
            f"    access_log {self.access_log} grpc;\n"
            f"    client_body_temp_path {f / 'tmp' / 'body'};\n"
            f"    proxy_temp_path {f / 'tmp' / 'proxy'};\n"
            f"    fastcgi_temp_path {f / 'tmp' / 'fastcgi'};\n"
            f"    uwsgi_temp_path {f / 'tmp' / 'uwsgi'};\n"
            f"    scgi_temp_path {f / 'tmp' / 'scgi'};\n"
            "    server {\n"
            f"        listen 127.0.0.1:{self.port} ssl http2;\n"
            f"        ssl_certificate {self.cert.cert_file};\n"
            f"        ssl_certificate_key {self.cert.key_file};\n"
            "        ssl_protocols TLSv1.2 TLSv1.3;\n"
            f"{mtls}"
            # Long polls (a worker's poll for tasks waits up to a minute) must not be cut off.
            "        client_body_timeout 1h;\n"
            "        grpc_read_timeout 1h;\n"
            "        grpc_send_timeout 1h;\n"
            "        location / {\n"
            "            default_type application/grpc;\n"  # for the refusals below
            f"{key_check}"
            f"            grpc_pass grpc://127.0.0.1:{self.upstream};\n"
            "        }\n"
            "    }\n"
            "}\n"
        )

    def start(self, *, timeout_s: float = 15) -> GrpcTlsProxy:
        if self.api_key is not None and not re.fullmatch(r"[A-Za-z0-9._~+/=-]+", self.api_key):
            raise ValueError("the proxy's API key must be a token (letters, digits, ._~+/=-)")
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "tmp").mkdir(exist_ok=True)
        conf = self.folder / "nginx.conf"
        conf.write_text(self.config())
        argv = [nginx_binary(), "-p", str(self.folder), "-c", str(conf), "-g", "daemon off;"]
        self.child = Child("nginx", argv, self.folder / "nginx.log", stop_grace_s=5).start()
        wait_until(
            f"nginx gRPC TLS proxy on {self.address}",
            lambda: _tls_port_answers(self.port),
            timeout_s=timeout_s,
            child=self.child,
        )
        return self

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()


def _grpc_refusal(message: str, *, indent: str = "") -> str:
    """nginx lines answering a gRPC call with status 16 (UNAUTHENTICATED) and `message`."""
    pad = "            " + indent
    return (
        f"{pad}add_header grpc-status 16 always;\n"
        f'{pad}add_header grpc-message "{message}" always;\n'
        f"{pad}return 200;\n"
    )


def grpc_tls_proxy(
    folder: Path,
    *,
    upstream: int,
    cert: Issued,
    client_ca: Path | None = None,
    api_key: str | None = None,
    port: int | None = None,
) -> GrpcTlsProxy:
    """Start nginx as a TLS terminator for the Temporal frontend on 127.0.0.1:`upstream`."""
    proxy = GrpcTlsProxy(folder, port or free_port(), upstream, cert, client_ca=client_ca, api_key=api_key)
    return proxy.start()


# --- PostgreSQL with ssl=on: a throwaway cluster -------------------------------------------------


def pg_bin_dir() -> Path:
    """The newest installed PostgreSQL's binaries (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    which = shutil.which("initdb")
    if which:
        return Path(which).parent
    raise FileNotFoundError(
        "initdb is not installed (looked in /usr/lib/postgresql/*/bin and PATH); install Debian's "
        "postgresql package for the PostgreSQL TLS test"
    )


@dataclass
class TlsPostgres:
    """A PostgreSQL cluster of its own (initdb in a temporary folder, its own port and socket folder)
    that accepts only TLS connections (`hostssl`), with a certificate from the test CA.

    Run as the `postgres` OS account when we are root (PostgreSQL refuses root). `password`: require
    it (scram-sha-256) for the `postgres` role; None: trust, the TLS being what is under test."""

    cert: Issued
    port: int = field(default_factory=free_port)
    password: str | None = None
    folder: Path | None = field(default=None, init=False)
    child: Child | None = field(default=None, init=False)

    def _account(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(PG_OS_USER)
        except KeyError as exc:
            raise FileNotFoundError(
                f"running as root, but there is no {PG_OS_USER!r} OS account to run PostgreSQL as"
            ) from exc

    def url(self, *, ca_file: Path | None, sslmode: str = "verify-full", database: str = "postgres") -> str:
        """A CUSTODY_DATABASE_URL for this cluster, TLS settings in the query string as in production."""
        auth = f"postgres:{self.password}" if self.password else "postgres"
        query = f"sslmode={sslmode}" + (f"&sslrootcert={ca_file}" if ca_file else "")
        return f"postgresql+psycopg://{auth}@127.0.0.1:{self.port}/{database}?{query}"

    def start(self, *, timeout_s: float = 30) -> TlsPostgres:
        bindir = pg_bin_dir()
        account = self._account()
        # Under /tmp, not under a pytest folder: those are 0700 root, and PostgreSQL must reach it.
        self.folder = folder = Path(tempfile.mkdtemp(prefix="custody-pg-tls-"))
        data = folder / "data"
        (folder / "run").mkdir()
        shutil.copy(self.cert.cert_file, folder / "server.pem")
        shutil.copy(self.cert.key_file, folder / "server-key.pem")
        (folder / "server-key.pem").chmod(0o600)  # PostgreSQL refuses a key others can read
        pwfile = folder / "pw"
        if self.password:
            pwfile.write_text(self.password + "\n")
        uid = gid = None
        if account is not None:
            uid, gid = account.pw_uid, account.pw_gid
            for path in (folder, *folder.rglob("*")):
                os.chown(path, uid, gid)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(folder)}
        argv = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
                "--locale=C.UTF-8", "--no-sync", "--no-instructions"]  # fmt: skip
        argv += [f"--pwfile={pwfile}", "--auth=scram-sha-256"] if self.password else ["--auth=trust"]
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, cwd=folder, check=False,
            user=uid, group=gid, extra_groups=[] if uid is not None else None,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr.strip()[-1000:]}")
        pwfile.unlink(missing_ok=True)
        method = "scram-sha-256" if self.password else "trust"
        # TLS only: no `host` or `local` line, so a connection without TLS is refused outright.
        (data / "pg_hba.conf").write_text(
            f"hostssl all all 127.0.0.1/32 {method}\nhostssl all all ::1/128 {method}\n"
        )
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(folder / "run"),
            "ssl": "on",
            "ssl_cert_file": str(folder / "server.pem"),
            "ssl_key_file": str(folder / "server-key.pem"),
            "ssl_min_protocol_version": "TLSv1.2",
            "fsync": "off",  # throwaway: speed over durability
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "16MB",
            "max_connections": "60",
            "logging_collector": "off",
        }
        pg_argv = [str(bindir / "postgres"), "-D", str(data)]
        for key, value in settings.items():
            pg_argv += ["-c", f"{key}={value}"]
        self.child = Child(
            "postgresql-tls", pg_argv, folder / "postgres.log", env=env, cwd=folder,
            stop_grace_s=10, stop_signal=signal.SIGINT,  # fast shutdown: sessions ended, not awaited
            user=uid, group=gid,
        ).start()  # fmt: skip
        wait_until(
            f"PostgreSQL (TLS only) on 127.0.0.1:{self.port}",
            lambda: _pg_ready(bindir, self.port),
            timeout_s=timeout_s,
            child=self.child,
        )
        return self

    def stop(self) -> None:
        """Stop the server, then remove its folder (data, certificates, log)."""
        if self.child is not None:
            self.child.stop()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _pg_ready(bindir: Path, port: int) -> bool:
    """pg_isready over TCP (it tries TLS first, as libpq does): 0 once connections are accepted."""
    done = subprocess.run(
        [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-t", "1"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0
