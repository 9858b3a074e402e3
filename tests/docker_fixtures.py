"""A real Docker Engine for the tests, and the image the flow containers use.

`.ci/run` starts dockerd and builds the base image before the tests. Run
outside it (plain scripts/test), the session fixture starts dockerd itself
when the binary is there and no daemon answers (stopping it at the end), and
builds the base image when mmdebstrap is there. When Docker cannot run, the
Docker tests are skipped with the reason, except in CI (CI=true), where they
fail.

Every container a test makes carries SESSION_LABELS; `no_leftover_containers`
fails a test that leaves one behind (and removes it).
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BASE_IMAGE = os.environ.get("FLOWDECK_TEST_DOCKER_BASE_IMAGE", "local/python:bookworm")
TEST_IMAGE = "local/flowdeck-test:latest"
SESSION_LABEL = "io.flowdeck.test-session"
SESSION_LABELS = {SESSION_LABEL: uuid.uuid4().hex}


def docker_unavailable(reason: str):
    """Skip (locally) or fail (CI) a test that needs Docker."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the Docker tests: {reason}")
    pytest.skip(reason)


def _answering():
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
        return client
    except Exception:  # noqa: BLE001 - no daemon, no socket
        return None


def _dockerd_binary() -> str | None:
    return shutil.which("dockerd") or ("/usr/sbin/dockerd" if os.path.exists("/usr/sbin/dockerd") else None)


def _daemon(command: str, state: pathlib.Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, FLOWDECK_DOCKERD_STATE=str(state))
    return subprocess.run([str(ROOT / "scripts" / "docker-daemon"), command], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory):
    """A docker-py client of a Docker Engine that answers."""
    try:
        import docker  # noqa: F401
    except ImportError:
        docker_unavailable("the docker package is not installed (pip install -e '.[dev]')")
    client = _answering()
    state = None
    if client is None:
        if _dockerd_binary() is None or os.geteuid() != 0:
            docker_unavailable("no Docker daemon answers, and none can be started here "
                               "(needs root and dockerd: apt-get install docker.io)")
        state = tmp_path_factory.mktemp("dockerd")
        r = _daemon("start", state)
        client = _answering() if r.returncode == 0 else None
        if client is None:
            docker_unavailable(f"dockerd did not start: {(r.stdout + r.stderr).strip()[-500:]}")
    yield client
    client.close()
    if state is not None:
        _daemon("stop", state)


@pytest.fixture(scope="session")
def base_image(docker_engine) -> str:
    import docker.errors

    try:
        docker_engine.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        if not shutil.which("mmdebstrap"):
            docker_unavailable(f"base image {BASE_IMAGE} is missing and mmdebstrap is not installed to build it "
                               f"(scripts/docker-base-image)")
        r = subprocess.run([str(ROOT / "scripts" / "docker-base-image"), "--tag", BASE_IMAGE],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return BASE_IMAGE


@pytest.fixture(scope="session")
def flowdeck_image(base_image) -> str:
    """flowdeck from this tree on the base image, through the real CLI. The
    image is labelled with its inputs' fingerprint: unchanged, it is kept."""
    r = subprocess.run([str(pathlib.Path(sys.executable).parent / "flowdeck"), "image", "build",
                        "--base", base_image, "--tag", TEST_IMAGE, "--quiet"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Image {TEST_IMAGE} " in r.stdout, r.stdout
    return TEST_IMAGE


def session_containers(engine) -> list:
    return engine.containers.list(all=True, filters={"label": f"{SESSION_LABEL}={SESSION_LABELS[SESSION_LABEL]}"})


@pytest.fixture
def no_leftover_containers(docker_engine):
    """Fails the test when a container of this session outlives it."""
    yield
    left = session_containers(docker_engine)
    for container in left:
        container.remove(force=True)
    assert not left, f"containers left behind: {[c.name for c in left]}"
