"""Entry point: ``coldbrew <command> ...``. Each command lives in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from coldbrew import __version__
from coldbrew.cli import bench, demo, encode, evaluate, recommend, serve, train

COMMANDS = [demo, recommend, evaluate, bench, encode, serve, train]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coldbrew",
        description="Cold-start recommendations from pretrained language models.",
    )
    parser.add_argument("--version", action="version", version=f"coldbrew {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError, ImportError, ConnectionError) as exc:
        print(f"coldbrew {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
