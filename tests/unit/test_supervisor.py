"""The launcher's restart policy with real (short-lived) processes and a given clock: backoff doubling
to the cap, reset after a stable run, and a crash loop said loudly but still restarted."""

from __future__ import annotations

import shutil
from pathlib import Path

from devstack.procs import Child
from devstack.supervisor import Backoff, Supervisor, describe_exit


def _crash(child: Child) -> None:
    assert child.proc is not None
    child.proc.wait(timeout=10)


def test_a_dead_child_is_restarted_with_doubling_backoff_and_a_crash_loop_is_loud(tmp_path: Path) -> None:
    false = shutil.which("false")
    assert false is not None
    child = Child("flaky", [false], tmp_path / "flaky.log").start()
    said: list[tuple[str, bool]] = []
    sup = Supervisor([child], say=lambda text, loud: said.append((text, loud)), policy=Backoff(), now=0.0)

    t = 0.0
    delays = []
    for n in range(6):
        _crash(child)
        sup.poll(t)  # noticed dead: scheduled
        text = said[-1][0] if not said[-1][1] else said[-2][0]
        delays.append(float(text.rsplit("in ", 1)[1].removesuffix(" s")))
        sup.poll(t + delays[-1] - 0.01)
        assert sup.restarts("flaky") == n  # not before its time
        t += delays[-1]
        sup.poll(t)  # restarted
        assert said[-1][0].startswith("flaky restarted (pid ")
    assert delays == [1, 2, 4, 8, 30, 30]  # the 5th crash within a minute: a loop, at the cap
    assert sup.restarts("flaky") == 6
    loud = [text for text, is_loud in said if is_loud]
    assert loud and "crashed 5 times within 60 s" in loud[0] and "Still restarting it every 30 s" in loud[0]
    assert "exited with status 1; restarting it in 1 s" in said[0][0]
    log = (tmp_path / "flaky.log").read_text()
    assert "[custody dev] flaky exited with status 1; restarting it in 1 s" in log
    assert "[custody dev] flaky restarted (pid" in log

    # Up for longer than a minute: healthy again, the next crash restarts after 1 s.
    _crash(child)
    sup.poll(t + 120)
    assert said[-1] == ("flaky exited with status 1; restarting it in 1 s", False)
    child.stop()


def test_exits_are_described_by_signal_name() -> None:
    assert describe_exit(-9) == "was killed by SIGKILL"
    assert describe_exit(2) == "exited with status 2"
