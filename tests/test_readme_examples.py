"""The README tells the truth: its configuration tables list every setting
there is (and none that is not), its Security examples really talk to a
server with auth or mutual TLS on, and its Node.js snippet works pasted into
an empty folder, with the package versions it names."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from support.processes import clean_env
from test_tls import _tls_credentials, pki  # noqa: F401 - the fixture

README = (ROOT / "README.md").read_text()
BIN = os.path.dirname(sys.executable)


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def indented_block(after: str) -> list[str]:
    """The first 4-space indented block after the text `after`."""
    rest = README.split(after, 1)[1].splitlines()
    start = next(i for i, line in enumerate(rest) if line.startswith("    "))
    block = []
    for line in rest[start:]:
        if not line.startswith("    "):
            break
        block.append(line[4:])
    return block


def fenced_block(after: str, lang: str) -> str:
    return README.split(after, 1)[1].split(f"```{lang}\n", 1)[1].split("```", 1)[0]


# -- configuration ------------------------------------------------------------------------------

def _client_variables() -> set[str]:
    """Every FLOWDECK_* variable the client side names (FLOWDECK_API_*, the run logger's, ...)."""
    found = set()
    for path in (ROOT / "client").rglob("*.py"):
        if "v1" not in path.relative_to(ROOT).parts:
            found |= set(re.findall(r"\"(FLOWDECK_[A-Z_]*[A-Z])\"", path.read_text()))
    return found


def test_configuration_lists_every_setting_and_no_other():
    from flowdeck.server.settings import Settings

    text = section("Configuration")
    named = set(re.findall(r"`(FLOWDECK_[A-Z_]+)`", text))
    server = {f"FLOWDECK_{name.upper()}" for name in Settings.model_fields}
    client = _client_variables()
    internal = {"FLOWDECK_FLOW_RUN_ID", "FLOWDECK_FENCING_TOKEN", "FLOWDECK_STORAGE_CONFIG_JSON"}  # agent -> run
    client -= internal
    assert {"FLOWDECK_API_URL", "FLOWDECK_API_KEY", "FLOWDECK_API_TLS_CA", "FLOWDECK_API_TIMEOUT"} <= client
    assert not (server - named), f"settings missing from the README: {sorted(server - named)}"
    assert not (client - named), f"client variables missing from the README: {sorted(client - named)}"
    extra = named - server - client - {"FLOWDECK_SERVER_AUTH", "FLOWDECK_HOME", "FLOWDECK_X"}  # X: any field
    assert not extra, f"the README names settings that do not exist: {sorted(extra)}"
    assert "no TLS or auth" not in text


# -- security examples ----------------------------------------------------------------------------

def _run_block(lines: list[str], address: str, env: dict, cwd) -> list[tuple[str, int, str]]:
    """Run the example's lines in one shell (variables carry over); each line's
    exit code and output."""
    script = []
    for i, line in enumerate(lines):
        command = re.sub(r"\s+#.*$", "", line).replace("127.0.0.1:4300", address)
        command = re.sub(r" \[[^]]*\]", "", command)  # optional arguments: left out
        script.append(f"{{ {command} ; }} > out.{i} 2>&1; echo $? > rc.{i}")
    subprocess.run(["bash", "-c", "\n".join(script)], env=env, cwd=cwd, timeout=300, check=True)
    return [(line, int((cwd / f"rc.{i}").read_text()), (cwd / f"out.{i}").read_text()) for i, line in enumerate(lines)]


def _start_from(server_process, first: str, home, cwd, credentials=None):
    """Start the server as the example's first line does (on a free port), in
    `cwd` (the example's relative file names)."""
    assert first.startswith("flowdeck server start --port 4300 ") and first.endswith(" &"), first
    args = first[len("flowdeck server start --port 4300 "):-2].split()
    return server_process(*args, home=home, cwd=cwd, credentials=credentials)


def test_api_key_example_talks_to_a_server_with_auth_on(tmp_path, server_process):
    lines = indented_block("**API keys.**")
    env = clean_env(tmp_path / "home", PATH=f"{BIN}:{os.environ['PATH']}")
    server = _start_from(server_process, lines[0], tmp_path / "home", tmp_path)
    results = _run_block(lines[1:], server.address, env, tmp_path)
    assert server.stop() == 0, server.output()
    for line, rc, out in results:
        if "# Error:" in line:  # the example shows the call without a key failing
            assert rc == 1 and "this server requires an API key" in out, (line, out)
        else:
            assert rc == 0, (line, out)
    listed = results[[i for i, r in enumerate(results) if "api-key ls" in r[0] and "FLOWDECK_API_KEY" in r[0]][0]][2]
    assert "ci" in listed and "ops" in listed
    assert "Revoked API key 'ci'" in results[-1][2]


def test_mutual_tls_example_talks_to_a_tls_server(tmp_path, pki, server_process):  # noqa: F811
    lines = indented_block("**TLS.**")
    env = clean_env(tmp_path / "home", PATH=f"{BIN}:{os.environ['PATH']}")
    server = _start_from(server_process, lines[0], tmp_path / "home", pki, _tls_credentials(pki, client_cert=True))
    results = _run_block(lines[1:], server.address, env, pki)
    # Without the client certificate the same call is refused: the example needed it.
    bare = subprocess.run([f"{BIN}/flowdeck", "deployment", "ls"], capture_output=True, text=True, timeout=60,
                          env=clean_env(tmp_path, FLOWDECK_API_URL=server.address,
                                        FLOWDECK_API_TLS_CA=str(pki / "ca.pem")))
    assert bare.returncode == 1 and "asks for a client certificate" in bare.stderr, bare.stderr
    assert server.stop() == 0, server.output()
    for line, rc, out in results:
        assert rc == 0, (line, out)
    assert "No deployments." in results[-1][2]


# -- the Node.js snippet --------------------------------------------------------------------------

@pytest.mark.slow
def test_node_snippet_works_in_an_empty_folder(tmp_path, database_url, server_process):
    if not database_url.startswith("sqlite"):
        pytest.skip("one backend is enough for the snippet")
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("Node.js and npm are required for the README snippet test")
    steps = [line[2:] for line in fenced_block("In an empty folder", "console").splitlines() if line.startswith("$ ")]
    install = next(s for s in steps if s.startswith("npm install "))
    wanted = dict(p.rsplit("@", 1) for p in install.split()[2:])
    pinned = json.loads((ROOT / "tools" / "package.json").read_text())["dependencies"]
    assert wanted == {name: pinned[name] for name in wanted}, (wanted, pinned)
    for name, version in wanted.items():
        installed = json.loads((ROOT / "tools" / "node_modules" / name / "package.json").read_text())["version"]
        assert installed == version, (name, installed)

    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "deploy.js").write_text(fenced_block("In an empty folder", "js"))
    server = server_process("--no-scheduler", home=tmp_path / "home")
    address = server.address
    for step in steps:
        if step.startswith("npm install "):
            # The same versions, from the pinned tools (no registry in the suite).
            (folder / "node_modules").symlink_to(ROOT / "tools" / "node_modules")
            continue
        command = re.sub(r"\s+#.*$", "", step).replace("/path/to/flowdeck", str(ROOT))
        command = command.replace("127.0.0.1:4300", address)
        res = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=folder, timeout=300,
                             env={**os.environ, "PYTHON": sys.executable})
        assert res.returncode == 0, (command, res.stdout, res.stderr)
    assert re.fullmatch(r"created deployment etl/daily \([0-9a-f-]{36}\)\n", res.stdout), res.stdout
    assert server.stop() == 0, server.output()
