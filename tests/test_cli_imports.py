"""`flowdeck --help` stays light: no grpc, sqlalchemy or pydantic at import or help time."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("grpc", "sqlalchemy", "pydantic", "google.protobuf", "alembic", "psycopg", "boto3")

PROBE = """
import json, sys
from flowdeck.cli.main import main
try:
    code = main({argv!r})
except SystemExit as e:
    code = e.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r} or m.startswith("google.protobuf"))
print(json.dumps({{"code": code, "heavy": heavy}}))
"""


@pytest.mark.parametrize("argv", [["--help"], [], ["deployment", "--help"], ["flow-run", "ls", "--help"],
                                  ["server", "start", "--help"]])
def test_help_imports_nothing_heavy(argv):
    roots = {h.split(".")[0] for h in HEAVY if h != "google.protobuf"}
    res = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, heavy=roots)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["code"] in (0, None)
    assert out["heavy"] == [], f"`flowdeck {' '.join(argv)}` imported {out['heavy']}"


def test_console_script_help():
    """The installed script answers --help (what keeps it fast is checked above:
    no heavy imports; how fast it is on this machine is not a test's business)."""
    import pathlib

    exe = pathlib.Path(sys.executable).parent / "flowdeck"
    res = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "usage: flowdeck" in res.stdout
