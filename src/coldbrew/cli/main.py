"""Entry point: ``coldbrew <command> ...``. Each command lives in its own module.

Only the named command's module is imported: together they pull in most of the package
(scikit-learn, the service, the trainer), which took up to 8 s on a busy 2-core machine
before ``coldbrew train`` could say a word. ``coldbrew --help`` (or no known command)
imports them all, to list them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from coldbrew import __version__

COMMANDS = ["demo", "recommend", "eval", "bench", "encode", "serve", "train"]
MODULES = {"eval": "coldbrew.cli.evaluate"}  # the rest: coldbrew.cli.<command>


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser for every command, or for ``only`` (a name in :data:`COMMANDS`)."""
    parser = argparse.ArgumentParser(
        prog="coldbrew",
        description="Cold-start recommendations from pretrained language models.",
    )
    parser.add_argument("--version", action="version", version=f"coldbrew {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS if only is None else [only]:
        importlib.import_module(MODULES.get(name, f"coldbrew.cli.{name}")).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    named = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(named)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError, ImportError, ConnectionError) as exc:
        print(f"coldbrew {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
