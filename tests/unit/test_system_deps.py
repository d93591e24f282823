"""scripts/system-deps.sh: nothing to do when everything is there; without root, a missing tool
stops it with one line naming the tool and its Debian package (never a half-run suite).

The "missing kcat" machine is this one with a PATH that lacks kcat; as root the script would
install it, so it runs as `nobody` then.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "system-deps.sh"


@pytest.fixture(scope="module")
def path_without_kcat() -> Iterator[str]:
    """A PATH of one directory linking every tool on the current PATH except kcat."""
    directory = Path(tempfile.mkdtemp(prefix="no-kcat-"))
    directory.chmod(0o755)  # readable by `nobody` too
    for entry in reversed([*os.environ["PATH"].split(os.pathsep), "/usr/local/go/bin"]):
        folder = Path(entry)
        if not folder.is_dir():
            continue
        for tool in folder.iterdir():
            if tool.name != "kcat":
                link = directory / tool.name
                link.unlink(missing_ok=True)
                link.symlink_to(tool)
    yield str(directory)
    shutil.rmtree(directory)


def as_unprivileged(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "nobody", "--", *argv] if os.geteuid() == 0 else argv


def system_python() -> str:
    """A python3 `nobody` may run (root's own, e.g. under pyenv in /root, is out of its reach)."""
    if os.geteuid() != 0:
        return sys.executable
    found = shutil.which("python3", path="/usr/bin:/bin")
    assert found, "no system python3"
    return found


def test_nothing_to_do_when_every_package_is_there() -> None:
    if shutil.which("kcat") is None:
        pytest.fail("kcat is missing: `make test` installs it (scripts/system-deps.sh test)")
    result = subprocess.run(
        as_unprivileged(["env", f"PYTHON={system_python()}", str(SCRIPT), "test"]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_a_missing_tool_stops_with_one_line_naming_its_package(path_without_kcat: str) -> None:
    result = subprocess.run(
        as_unprivileged(
            ["env", f"PATH={path_without_kcat}", f"PYTHON={system_python()}", str(SCRIPT), "test"]
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "billstream: missing kcat: run as root, or apt-get install kcat"
    ]


def test_dev_needs_fewer_packages_than_test(path_without_kcat: str) -> None:
    result = subprocess.run(
        as_unprivileged(
            ["env", f"PATH={path_without_kcat}", f"PYTHON={system_python()}", str(SCRIPT), "base"]
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")
