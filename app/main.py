"""``python app.py``: start the CycleTrans app.

With no arguments it serves the embedded default: the generated demo set (made on first use in
the cycletrans cache) and the three shipped demo checkpoints (Baseline, CycleTrans without
cycle, CycleTrans). Flags point it at a real dataset and real checkpoints::

    python app.py --data-root /data/SYSU-MM01 --checkpoint runs/sysu/full/best.safetensors \\
        --baseline-checkpoint runs/sysu/baseline/best.safetensors

Only the dataset folder and the cache folder are served (Gradio's allowed paths); the server
listens on 127.0.0.1 unless ``--host`` says otherwise, and makes no public link unless
``--share``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

MAX_UPLOAD = "25mb"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python app.py", description="Serve the CycleTrans VI-ReID app (Gradio).")
    parser.add_argument("--dataset", choices=("sysu", "regdb"), default=None,
                        help="dataset layout (default: detected from --data-root)")
    parser.add_argument("--data-root", default=None, metavar="DIR",
                        help="dataset folder (default: the generated demo set in the cache)")
    parser.add_argument("--checkpoint", default=None, metavar="FILE",
                        help="CycleTrans weights (.safetensors with its .json; default: "
                        "assets/checkpoints/full.safetensors, required with --data-root)")
    parser.add_argument("--nocycle-checkpoint", default=None, metavar="FILE",
                        help="CycleTrans without cycle (default with the demo set: "
                        "assets/checkpoints/nocycle.safetensors; optional otherwise)")
    parser.add_argument("--baseline-checkpoint", default=None, metavar="FILE",
                        help="Baseline (default with the demo set: "
                        "assets/checkpoints/baseline.safetensors; optional otherwise)")
    parser.add_argument("--trial", type=int, default=1, help="RegDB trial, 1..10 (default: 1)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default: Gradio's, 7860 or the next free one)")
    parser.add_argument("--share", action="store_true",
                        help="make a public gradio.live link (default: off)")
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="feature cache (default: ~/.cache/cycletrans/app, or "
                        "$CYCLETRANS_CACHE/app)")
    parser.add_argument("--device", default="cpu",
                        help="where the models run: cpu, cuda, cuda:N or auto (default: cpu)")
    args = parser.parse_args(argv)
    if args.data_root is not None and args.checkpoint is None:
        parser.error("--data-root needs --checkpoint (the CycleTrans model trained on it)")
    if args.data_root is None and args.dataset == "regdb":
        parser.error("--dataset regdb needs --data-root (the demo set has the SYSU-MM01 layout)")
    if not 1 <= args.trial <= 10:
        parser.error(f"--trial must be in 1..10, got {args.trial}")
    return args


def checkpoints_from_args(args: argparse.Namespace) -> dict:
    """Model name -> checkpoint path (None = not loaded) from the flags."""
    from app.context import BASELINE, CYCLETRANS, DEFAULT_CHECKPOINTS, NOCYCLE

    given = {CYCLETRANS: args.checkpoint, NOCYCLE: args.nocycle_checkpoint,
             BASELINE: args.baseline_checkpoint}
    if args.data_root is None:  # the demo: the shipped checkpoints unless overridden
        return {name: given[name] or DEFAULT_CHECKPOINTS[name] for name in given}
    return given


def serve(context: Any, host: str = "127.0.0.1", port: int | None = None, share: bool = False,
          block: bool = True, quiet: bool = False) -> tuple[Any, str]:
    """Build the UI of an :class:`~app.context.AppContext` and serve it.

    Only the dataset and cache folders are served besides Gradio's own upload folder; uploads
    are limited to ``MAX_UPLOAD``. ``block=False`` returns at once (the server runs in a thread;
    stop it with ``demo.close()``). Returns ``(demo, url)``.
    """
    from app.ui import build_ui

    demo = build_ui(context)
    demo.queue(default_concurrency_limit=2)
    _, url, _ = demo.launch(server_name=host, server_port=port, share=share,
                            allowed_paths=context.served_paths(), max_file_size=MAX_UPLOAD,
                            footer_links=["api"], prevent_thread_lock=not block, quiet=quiet)
    return demo, url


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from app.context import build_context
    from cycletrans.engine.distributed import resolve_device

    try:
        context = build_context(data_root=args.data_root, dataset=args.dataset,
                                checkpoints=checkpoints_from_args(args), trial=args.trial,
                                cache_dir=args.cache_dir, device=str(resolve_device(args.device)))
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    serve(context, args.host, args.port, args.share)
    return 0
