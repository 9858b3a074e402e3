"""client/v1 is exactly what scripts/gen-proto makes from proto/flowdeck/v1."""
from __future__ import annotations

import filecmp
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def files(d: pathlib.Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_generated_code_is_fresh(tmp_path):
    out = tmp_path / "v1"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-proto"), "--out", str(out)], check=True,
                   capture_output=True, timeout=300)
    committed = ROOT / "client" / "v1"
    fresh, old = files(out), files(committed)
    assert fresh == old, f"only generated: {sorted(fresh - old)}; only committed: {sorted(old - fresh)}"
    stale = [f for f in sorted(fresh) if not filecmp.cmp(out / f, committed / f, shallow=False)]
    assert not stale, f"client/v1 is stale, run scripts/gen-proto: {stale}"


def test_every_proto_has_generated_modules():
    protos = sorted(p.stem for p in (ROOT / "proto" / "flowdeck" / "v1").glob("*.proto"))
    assert protos
    for stem in protos:
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            assert (ROOT / "client" / "v1" / f"{stem}{suffix}").exists(), f"{stem}{suffix} is missing"
