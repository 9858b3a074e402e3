"""The dependency contracts hold, and they can fail: a forbidden import added to
a copy of the package makes `lint-imports` exit non-zero. The installed package
is one real tree, so a folder named flowdeck/ in the working directory does not
shadow it."""
from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LINT = pathlib.Path(sys.executable).parent / "lint-imports"
# Source root -> where it sits in the import tree (pyproject's package-dir).
ROOTS = {"client": "flowdeck", "server": "flowdeck/server", "agent": "flowdeck/agent"}


def package_copy(dest: pathlib.Path) -> pathlib.Path:
    """The import tree `flowdeck/` laid out from the source roots, as an install lays it out."""
    for src, rel in ROOTS.items():
        shutil.copytree(ROOT / src, dest / rel, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    return dest


def lint(pythonpath: pathlib.Path | None = None) -> subprocess.CompletedProcess:
    env = None
    if pythonpath is not None:
        import os

        env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def test_contracts_are_kept():
    res = lint()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


@pytest.mark.parametrize(
    "module, line, broken",
    [
        ("core/_scratch.py", "import grpc\n", "core is pure"),
        ("core/_scratch.py", "from flowdeck.client import get_client\n", "core is pure"),
        ("server/_scratch.py", "from flowdeck.client import get_client\n", "the server uses core"),
        ("agent/_scratch.py", "from flowdeck.server import db\n", "the agent uses core"),
        ("_scratch.py", "import flowdeck.server.app\n", "the client and SDK reach the server"),
        ("server/_scratch.py", "from flowdeck.server.api import convert\n", "used from above only"),
        # flow_runs imports sqlhelpers: the other way round closes a cycle.
        ("server/sqlhelpers.py", "from flowdeck.server import flow_runs\n", "import each other one way"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, line, broken):
    tree = package_copy(tmp_path)
    target = tree / "flowdeck" / module
    target.write_text(line)
    if module == "_scratch.py":
        # A module of the client layer: make it one by importing it from flowdeck.client.
        init = tree / "flowdeck" / "client" / "__init__.py"
        init.write_text(init.read_text() + "\nfrom flowdeck import _scratch  # noqa\n")
    res = lint(pythonpath=tree)
    assert res.returncode != 0, res.stdout
    assert "BROKEN" in res.stdout
    assert broken in res.stdout.replace("\n", " ")


def test_a_flowdeck_folder_in_the_working_directory_does_not_shadow_the_package(tmp_path):
    (tmp_path / "flowdeck").mkdir()
    res = subprocess.run([sys.executable, "-c", "from flowdeck import flow; import flowdeck.server.app; print(flow)"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "Flow" in res.stdout or "function" in res.stdout
