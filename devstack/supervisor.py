"""Keeps the stack's processes running: a child that dies is started again after a backoff.

Why: before, one crashed process (the API killed mid-upload, the worker, SeaweedFS) ended the whole
`make run`, and everything stopped until somebody noticed. Now a crash costs a restart: after 1 s,
then 2, 4, ... up to 30 s while it keeps crashing; a child that stayed up for a minute starts again
from 1 s. Each restart is written on the console and into the child's own log. A child that crashes
5 times within a minute is reported loudly (it will not fix itself: look at its log) and is still
restarted every 30 s, so the stack recovers once the cause is gone.

`poll` is driven by the launcher's loop with the current time, so the policy is testable without
waiting (tests/unit/test_supervisor.py) and with real processes (tests/integration/test_launcher.py).
"""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from devstack.procs import Child


@dataclass(frozen=True)
class Backoff:
    first_s: float = 1.0
    max_s: float = 30.0
    #: Up this long, a child counts as healthy again: its next crash restarts after `first_s`.
    stable_s: float = 60.0
    #: This many crashes within `burst_window_s` is a crash loop, reported as such.
    burst: int = 5
    burst_window_s: float = 60.0


@dataclass
class _Watch:
    child: Child
    started_at: float
    delay_s: float
    crashes: deque[float] = field(default_factory=deque)
    restart_at: float | None = None
    restarts: int = 0


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exited"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class Supervisor:
    """Restarts dead children. `say(text, loud)` reports each event (the launcher prints it)."""

    def __init__(
        self,
        children: list[Child],
        *,
        say: Callable[[str, bool], None],
        policy: Backoff | None = None,
        now: float | None = None,
    ) -> None:
        self.policy = policy or Backoff()
        self.say = say
        start = time.monotonic() if now is None else now
        self._watches = [_Watch(c, started_at=start, delay_s=self.policy.first_s) for c in children]

    def restarts(self, name: str) -> int:
        return next(w.restarts for w in self._watches if w.child.name == name)

    def poll(self, now: float | None = None) -> None:
        """Notice children that died and restart those whose backoff has passed."""
        now = time.monotonic() if now is None else now
        for watch in self._watches:
            if watch.restart_at is None and not watch.child.alive():
                self._crashed(watch, now)
            if watch.restart_at is not None and now >= watch.restart_at:
                self._restart(watch, now)

    def _crashed(self, watch: _Watch, now: float) -> None:
        policy, child = self.policy, watch.child
        code = child.proc.returncode if child.proc is not None else None
        if now - watch.started_at >= policy.stable_s:
            watch.delay_s = policy.first_s
        watch.crashes.append(now)
        while watch.crashes and now - watch.crashes[0] > policy.burst_window_s:
            watch.crashes.popleft()
        looping = len(watch.crashes) >= policy.burst
        if looping:
            watch.delay_s = policy.max_s
        delay = watch.delay_s
        watch.restart_at = now + delay
        watch.delay_s = min(policy.max_s, watch.delay_s * 2)
        text = f"{child.name} {describe_exit(code)}; restarting it in {delay:g} s"
        child.note(text)
        self.say(text, False)
        if looping:
            loud = (
                f"{child.name} crashed {len(watch.crashes)} times within {policy.burst_window_s:g} s: "
                f"it is not recovering on its own. See {child.log_path}. "
                f"Still restarting it every {policy.max_s:g} s."
            )
            child.note(loud)
            self.say(loud, True)

    def _restart(self, watch: _Watch, now: float) -> None:
        watch.child.start()
        watch.restart_at = None
        watch.started_at = now
        watch.restarts += 1
        text = f"{watch.child.name} restarted (pid {watch.child.pid}, restart #{watch.restarts})"
        watch.child.note(text)
        self.say(text, False)
