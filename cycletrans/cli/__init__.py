"""``python -m cycletrans <command>``: synth, train, evaluate, extract, ablate.

Each command is one module with ``add_parser(subparsers)`` and ``run(args) -> int``. Errors the
user can act on (bad arguments, missing data, a NaN loss) are printed as one ``error:`` message
with exit status 2, not as a traceback; a training run stopped by a signal exits with 128 + the
signal's number (130 for Ctrl-C).

Example:
    >>> main(["train", "--help"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cycletrans import __version__
from cycletrans.cli import ablate, evaluate, extract, synth, train

COMMANDS = (synth, train, evaluate, extract, ablate)


def build_parser() -> argparse.ArgumentParser:
    """The ``cycletrans`` parser with one subcommand per module of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="python -m cycletrans",
        description="CycleTrans (TNNLS 2024) for visible-infrared person re-identification: "
        "generate the synthetic set, train, evaluate by the official protocols, extract "
        "features, reproduce the ablation tables.",
    )
    parser.add_argument("--version", action="version", version=f"cycletrans {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    from cycletrans.engine.trainer import StoppedBySignalError, TrainingError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except StoppedBySignalError as error:
        print(f"{parser.prog} {args.command}: {error}", file=sys.stderr)
        return 128 + error.signum
    except (ValueError, FileNotFoundError, TrainingError) as error:
        print(f"{parser.prog} {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog} {args.command}: interrupted", file=sys.stderr)
        return 130
