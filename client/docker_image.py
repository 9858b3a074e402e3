"""Images for `DockerFlowRunner`: flowdeck and a project's requirements on top
of any Python base image, built on the local Docker engine without a
container registry (`flowdeck image build`).

    build_image(base="local/python:bookworm", tag="etl:1", requirements="requirements.txt")

flowdeck goes in as a wheel built from the source tree this flowdeck runs
from (or a wheel given with `wheel=`); pip inside the build reaches only the
package index, with the machine's CA bundle and pip index settings, and the
build runs on the host network. The base image must have `python3` with the
venv module; everything is installed into /opt/flowdeck, first on PATH.

An image is labelled with a fingerprint of its inputs (the base image's id,
the wheel's content, the requirements): building the same again keeps the
image there and returns at once.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable

from flowdeck.exceptions import FlowdeckError

FINGERPRINT_LABEL = "io.flowdeck.image-fingerprint"
# Bump when the Dockerfile below changes, so old images are not reused.
RECIPE = "1"
DOCKERFILE = """\
FROM {base}
{args}COPY . /tmp/flowdeck-image/
RUN python3 -m venv /opt/flowdeck \\
 && PIP_CERT={cert} /opt/flowdeck/bin/pip install --no-cache-dir --disable-pip-version-check \\
      /tmp/flowdeck-image/{wheel} -r /tmp/flowdeck-image/requirements.txt \\
 && rm -rf /tmp/flowdeck-image
ENV PATH=/opt/flowdeck/bin:$PATH PYTHONUNBUFFERED=1
"""
# pip settings passed into the build when set here (plain URLs and host names only).
PIP_BUILD_ARGS = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_DEFAULT_TIMEOUT")
PROXY_BUILD_ARGS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


class ImageBuildError(FlowdeckError):
    """The image could not be built; the message says why in one line."""

    code = "FAILED_PRECONDITION"
    reason = "IMAGE_BUILD_FAILED"


@dataclasses.dataclass
class BuiltImage:
    tag: str
    id: str
    fingerprint: str
    reused: bool
    seconds: float


def source_tree() -> Path | None:
    """The project folder this flowdeck is imported from, when it runs from source."""
    import flowdeck

    package = Path(flowdeck.__file__).resolve().parent
    root = package.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "flowdeck"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def build_wheel(out: Path) -> Path:
    """A wheel of the flowdeck source tree (built from a copy: the tree stays clean)."""
    root = source_tree()
    if root is None:
        raise ImageBuildError("flowdeck does not run from its source tree here: pass the wheel to install "
                              "(--wheel FILE)")
    copy = out / "src"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "tools", "tests", "node_modules", "*.egg-info", "__pycache__",
        ".pytest_cache", ".hypothesis"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(out), str(copy)], capture_output=True, text=True)
    wheels = sorted(out.glob("flowdeck-*.whl"))
    if r.returncode != 0 or not wheels:
        last = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no wheel was made"]
        raise ImageBuildError(f"building the flowdeck wheel from {root} failed: {last[0]}")
    return wheels[0]


def wheel_digest(path: Path) -> str:
    """sha256 over the wheel's member names and contents (not the zip's
    timestamps, nor the long description: a README edit needs no new image)."""
    h = hashlib.sha256()
    try:
        with zipfile.ZipFile(path) as z:
            for name in sorted(z.namelist()):
                data = z.read(name)
                if name.endswith(".dist-info/METADATA"):
                    data = data.split(b"\n\n", 1)[0]  # the headers; the body is the description
                elif name.endswith(".dist-info/RECORD"):
                    continue  # it holds METADATA's hash
                h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    except (OSError, zipfile.BadZipFile) as e:
        raise ImageBuildError(f"{path} is not a readable wheel: {e}") from None
    return h.hexdigest()


def _ca_bundle() -> Path | None:
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"), *CA_BUNDLES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _build_args() -> dict[str, str]:
    args = {}
    for name in PIP_BUILD_ARGS + PROXY_BUILD_ARGS:
        value = os.environ.get(name, "")
        # file:// indexes and find-links exist only on this machine.
        parts = [p for p in value.split() if not p.startswith("file:")]
        if parts:
            args[name] = " ".join(parts)
    return args


def _engine():
    try:
        import docker
    except ImportError:
        raise ImageBuildError("building images needs the `docker` package: pip install 'flowdeck[docker]'") from None
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as e:  # noqa: BLE001 - no daemon, no socket, no permission
        raise ImageBuildError(f"no Docker Engine answers at {os.environ.get('DOCKER_HOST') or 'the default socket'}"
                              f": {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return client


def build_image(base: str, tag: str, *, requirements: str | os.PathLike | None = None,
                wheel: str | os.PathLike | None = None, echo: Callable[[str], None] | None = None) -> BuiltImage:
    """Build (or keep, when its inputs are unchanged) image `tag`."""
    started = time.monotonic()
    say = echo or (lambda _line: None)
    client = _engine()
    import docker.errors

    try:
        base_id = client.images.get(base).id
    except docker.errors.ImageNotFound:
        raise ImageBuildError(f"base image {base!r} is not on this Docker engine (nothing is pulled): "
                              f"scripts/docker-base-image builds local/python:bookworm from the Debian mirror") from None
    req_text = b""
    if requirements is not None:
        try:
            req_text = Path(requirements).read_bytes()
        except OSError as e:
            raise ImageBuildError(f"cannot read requirements file {str(requirements)!r}: {e.strerror}") from None
    with tempfile.TemporaryDirectory(prefix="flowdeck-image-") as tmp:
        context = Path(tmp) / "context"
        context.mkdir()
        wheel_path = Path(wheel) if wheel is not None else build_wheel(Path(tmp))
        if not wheel_path.is_file():
            raise ImageBuildError(f"wheel {str(wheel_path)!r} not found")
        fingerprint = hashlib.sha256("\0".join(
            [RECIPE, base_id, wheel_digest(wheel_path), hashlib.sha256(req_text).hexdigest()]).encode()).hexdigest()
        previous, current = _existing(client, tag, fingerprint)
        if current:
            return BuiltImage(tag, previous, fingerprint, True, time.monotonic() - started)
        shutil.copy(wheel_path, context / wheel_path.name)
        (context / "requirements.txt").write_bytes(req_text)
        ca = _ca_bundle()
        cert = "/tmp/flowdeck-image/ca.crt" if ca else '""'
        if ca:
            shutil.copy(ca, context / "ca.crt")
        args = "".join(f"ARG {name}\n" for name in PIP_BUILD_ARGS)
        (context / "Dockerfile").write_text(DOCKERFILE.format(base=base, args=args, wheel=wheel_path.name, cert=cert))
        image_id = _run_build(client, context, tag, fingerprint, say)
    _smoke_test(client, tag)
    if previous and previous != image_id:
        _drop_replaced(client, previous)
    return BuiltImage(tag, image_id, fingerprint, False, time.monotonic() - started)


def _existing(client, tag: str, fingerprint: str) -> tuple[str, bool]:
    """The id of the image now tagged `tag` ("" if none), and whether it has `fingerprint`."""
    import docker.errors

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return "", False
    return image.id, (image.labels or {}).get(FINGERPRINT_LABEL) == fingerprint


def _drop_replaced(client, image_id: str) -> None:
    """The image the tag named before, now untagged: removed unless something still uses it."""
    try:
        if not client.images.get(image_id).tags:
            client.images.remove(image_id)
    except Exception:  # noqa: BLE001 - a container or another tag still uses it: keep it
        pass


def _run_build(client, context: Path, tag: str, fingerprint: str, say: Callable[[str], None]) -> str:
    lines: list[str] = []
    image_id = ""
    try:
        for chunk in client.api.build(path=str(context), tag=tag, network_mode="host", pull=False, rm=True,
                                      forcerm=True, decode=True, buildargs=_build_args(),
                                      labels={FINGERPRINT_LABEL: fingerprint}):
            if "error" in chunk:
                tail = " / ".join(line for line in lines[-3:] if line)
                raise ImageBuildError(f"building image {tag!r} failed: {chunk['error'].strip()}"
                                      + (f" (last output: {tail})" if tail else ""))
            for line in (chunk.get("stream") or "").splitlines():
                if line.strip():
                    lines.append(line.strip())
                    say(line)
            image_id = (chunk.get("aux") or {}).get("ID", image_id)
    except ImageBuildError:
        raise
    except Exception as e:  # noqa: BLE001 - the engine's reason, in one line
        raise ImageBuildError(f"building image {tag!r} failed: {str(e).splitlines()[0]}") from None
    return image_id or client.images.get(tag).id


def _smoke_test(client, tag: str) -> None:
    """flowdeck's flow process must import in the image."""
    try:
        client.containers.run(tag, ["python3", "-c", "import flowdeck.agent.run_flow"], network_mode="host",
                              remove=True, stdout=False, stderr=True)
    except Exception as e:  # noqa: BLE001 - ContainerError carries the stderr
        detail = getattr(e, "stderr", None)
        text = (detail.decode("utf-8", "replace").strip().splitlines() or [""])[-1] if detail else str(e)
        raise ImageBuildError(f"image {tag!r} was built but flowdeck does not import in it: {text}") from None
