"""`flowdeck image build`: an image for DockerFlowRunner (only stdlib at import time)."""
from __future__ import annotations


def register(subparsers) -> None:
    image = subparsers.add_parser("image", help="build images for the Docker flow runner")
    sub = image.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser("build", help="build an image with flowdeck and your requirements on top of a Python "
                                     "base image (no registry: the base image must be on this Docker engine)")
    p.add_argument("--base", required=True, metavar="IMAGE", help="a Python base image with python3 and venv, "
                                                                   "e.g. local/python:bookworm")
    p.add_argument("--tag", required=True, metavar="TAG", help="the image to make, e.g. etl-flows:1")
    p.add_argument("--requirements", default=None, metavar="FILE", help="a pip requirements file to install too")
    p.add_argument("--wheel", default=None, metavar="FILE",
                   help="the flowdeck wheel to install (default: one built from flowdeck's source tree)")
    p.add_argument("--quiet", "-q", action="store_true", help="do not show the build's output")
    p.set_defaults(func="flowdeck.cli.image_cmd:build")


def build(args) -> int:
    from flowdeck.docker_image import build_image

    echo = None if args.quiet else (lambda line: print(f"  {line}", flush=True))
    built = build_image(args.base, args.tag, requirements=args.requirements, wheel=args.wheel, echo=echo)
    what = "is up to date" if built.reused else f"built in {built.seconds:.1f}s"
    print(f"Image {built.tag} {what} ({built.id[:19]}, flowdeck on {args.base})")
    return 0
