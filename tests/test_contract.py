"""The contract is guarded: proto/ must not break the released baseline
(tools/api-baseline/flowdeck-v1.binpb), and the check really catches breaks."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import ROOT

BUF = ROOT / "tools" / "node_modules" / ".bin" / "buf"
BASELINE = ROOT / "tools" / "api-baseline" / "flowdeck-v1.binpb"


@pytest.fixture(scope="module")
def buf():
    if not BUF.exists():
        subprocess.run(["npm", "ci", "--prefix", str(ROOT / "tools"), "--no-audit", "--no-fund"], check=True,
                       capture_output=True, timeout=600)
    return str(BUF)


def test_proto_does_not_break_the_baseline(buf):
    r = subprocess.run([buf, "breaking", "--against", str(BASELINE)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_proto_lints_clean(buf):
    r = subprocess.run([buf, "lint"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("edit", [
    # a removed field
    ("common.proto", "  string description = 13;\n", ""),
    # a renumbered field
    ("common.proto", "  bool catchup = 14;", "  bool catchup = 40;"),
    # a removed RPC
    ("deployment_service.proto", "  rpc DeleteDeployment(DeleteDeploymentRequest) returns (google.protobuf.Empty);\n", ""),
])
def test_breaking_changes_are_caught(buf, tmp_path, edit):
    filename, old, new = edit
    copy = tmp_path / "proto"
    shutil.copytree(ROOT / "proto", copy)
    target = copy / "flowdeck" / "v1" / filename
    text = target.read_text()
    assert old in text
    target.write_text(text.replace(old, new))
    r = subprocess.run([buf, "breaking", str(copy), "--against", str(BASELINE)], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode != 0, "buf breaking accepted a breaking change"
