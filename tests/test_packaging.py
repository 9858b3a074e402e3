"""Packaging: every source package is listed in pyproject.toml, and the built
wheel works in a fresh venv (imports, `flowdeck --help`, a server that migrates)."""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile

import pytest

from support.processes import ServerProcess

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Source root -> import name (pyproject's package-dir).
ROOTS = {"client": "flowdeck", "server": "flowdeck.server", "agent": "flowdeck.agent"}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def source_packages() -> set[str]:
    found = set()
    for src, name in ROOTS.items():
        base = ROOT / src
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            if "__pycache__" in rel.parts:
                continue
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    return found


def test_package_dirs_match_the_layout():
    tool = pyproject()["tool"]["setuptools"]
    assert tool["package-dir"] == {"flowdeck": "client", "flowdeck.server": "server", "flowdeck.agent": "agent"}


def test_every_source_package_is_listed():
    listed = set(pyproject()["tool"]["setuptools"]["packages"])
    found = source_packages()
    missing = sorted(found - listed)
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"
    stale = sorted(listed - found)
    assert not stale, f"listed in pyproject.toml but no such folder with __init__.py: {stale}"


def test_console_script_points_at_the_cli():
    assert pyproject()["project"]["scripts"] == {"flowdeck": "flowdeck.cli.main:main"}


def copy_sources(dest: pathlib.Path) -> pathlib.Path:
    """Build from a copy: no build/ or egg-info in the working tree, no races
    with anyone else building at the same time."""
    src = dest / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in ROOTS:
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    return src


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv(tmp_path):
    src = copy_sources(tmp_path)
    dist = tmp_path / "dist"
    # setuptools builds wheels itself; the dev venv has no `wheel` package.
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check",
                    "--outdir", str(dist), str(src)], check=True, capture_output=True, timeout=300)
    wheel = next(dist.glob("flowdeck-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("flowdeck/v1/common_pb2.pyi", "flowdeck/server/migrations/env.py",
                   "flowdeck/server/migrations/script.py.mako", "flowdeck/cli/main.py"):
        assert needed in names, f"{needed} is not in the wheel"
    assert any(re.match(r"flowdeck/server/migrations/versions/\d+_.*\.py$", n) for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("FLOWDECK_")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    t0 = time.monotonic()
    res = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--timeout", "60", str(wheel)],
                         capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    print(f"pip install of the wheel and its dependencies took {time.monotonic() - t0:.1f}s")

    # Run from a directory away from the source tree, so only the installed copy is importable.
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    env["FLOWDECK_HOME"] = str(tmp_path / "home")
    py = str(venv / "bin" / "python")
    code = ("import flowdeck, flowdeck.server, flowdeck.agent, flowdeck.v1, flowdeck.server.app, flowdeck.client;"
            "print(flowdeck.__file__)")
    res = subprocess.run([py, "-c", code], capture_output=True, text=True, cwd=run_dir, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert str(venv) in res.stdout and str(ROOT) not in res.stdout

    res = subprocess.run([str(venv / "bin" / "flowdeck"), "--help"], capture_output=True, text=True, cwd=run_dir,
                         env=env, timeout=60)
    assert res.returncode == 0 and "usage: flowdeck" in res.stdout, res.stderr

    # The packaged migrations run: the server reaches SERVING on a fresh SQLite file.
    server = ServerProcess(tmp_path / "server", exe=venv / "bin" / "flowdeck", home=tmp_path / "home", cwd=run_dir,
                           base_env=env)
    server.start()
    assert server.stop() == 0, server.output()
    assert (tmp_path / "home" / "flowdeck.db").exists()
