"""``python -m cycletrans synth``: write the synthetic visible/infrared pedestrian set.

Example:
    $ python -m cycletrans synth --out data/synth-demo --preset demo --seed 0
    $ python -m cycletrans synth --out data/synth-demo --ids test      # test identities only
    $ python -m cycletrans synth --out data/synth-regdb --layout regdb
"""

from __future__ import annotations

import argparse
import sys

from cycletrans.data.synth import generate
from cycletrans.data.synth.layout import LAYOUTS
from cycletrans.data.synth.presets import PRESETS

DESCRIPTION = (
    "Generate the procedural visible/infrared pedestrian set in the SYSU-MM01 "
    "(cam1..cam6 + exp/) or RegDB (Visible/, Thermal/, idx/) layout. The same seed "
    "gives byte-identical files."
)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _positive(text: str) -> int:
    value = _seed(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a positive integer, got 0")
    return value


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``synth`` options to ``parser``."""
    parser.add_argument(
        "--out",
        required=True,
        help="output folder (new, empty, or the same synthetic set to complete)",
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="demo",
        help="demo: ~190 ids at 128x64; sysu: SYSU-MM01's real per-camera "
        "counts and split (45,863 images) at 256x128 (default: demo)",
    )
    parser.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--layout", choices=LAYOUTS, default="sysu", help="folder layout (default: sysu)"
    )
    parser.add_argument(
        "--ids",
        choices=("test", "all"),
        default="all",
        help="generate only the test identities, or all (default: all)",
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="rendering processes; the output does not depend on it (default: 1)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``synth`` command on a ``python -m cycletrans`` subparsers object."""
    parser = subparsers.add_parser(
        "synth", help="generate the synthetic VI-ReID dataset", description=DESCRIPTION
    )
    configure(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Generate as ``args`` asks; print the rate. Returns the exit status (0, or 2 on error)."""
    try:
        summary = generate(
            args.out,
            preset=args.preset,
            seed=args.seed,
            layout=args.layout,
            ids=args.ids,
            progress=not args.quiet,
            workers=args.workers,
        )
    except (ValueError, FileExistsError) as error:
        print(f"synth: error: {error}", file=sys.stderr)
        return 2
    print(
        f"wrote {summary.images} images to {summary.out_dir} in {summary.seconds:.1f} s "
        f"({summary.images_per_second:.0f} images/s)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m cycletrans.cli.synth``."""
    parser = configure(
        argparse.ArgumentParser(prog="python -m cycletrans.cli.synth", description=DESCRIPTION)
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
