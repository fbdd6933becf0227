"""``python app.py``: start the CycleTrans app.

With no arguments it serves the embedded default: the generated demo set (made on first use in
the cycletrans cache) and the three shipped demo checkpoints (Baseline, CycleTrans without
cycle, CycleTrans). Flags point it at a real dataset and real checkpoints::

    python app.py --data-root /data/SYSU-MM01 --checkpoint runs/sysu/full/best.safetensors \\
        --baseline-checkpoint runs/sysu/baseline/best.safetensors

Start-up prints one line per phase with its time (progress bars only on a terminal). Only
the images the UI shows are served (the app's media folder: thumbnails and query copies); the
server listens on 127.0.0.1 unless ``--host`` says otherwise, and makes no public link unless
``--share``.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
from typing import Any

MAX_UPLOAD = "25mb"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python app.py", description="Serve the CycleTrans VI-ReID app (Gradio)."
    )
    parser.add_argument(
        "--dataset",
        choices=("sysu", "regdb"),
        default=None,
        help="dataset layout (default: detected from --data-root)",
    )
    parser.add_argument(
        "--data-root",
        default=None,
        metavar="DIR",
        help="dataset folder (default: the generated demo set in the cache)",
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        metavar="FILE",
        help="CycleTrans weights (.safetensors with its .json; default: "
        "assets/checkpoints/full.safetensors, required with --data-root)",
    )
    parser.add_argument(
        "--nocycle-checkpoint",
        default=None,
        metavar="FILE",
        help="CycleTrans without cycle (default with the demo set: "
        "assets/checkpoints/nocycle.safetensors; optional otherwise)",
    )
    parser.add_argument(
        "--baseline-checkpoint",
        default=None,
        metavar="FILE",
        help="Baseline (default with the demo set: "
        "assets/checkpoints/baseline.safetensors; optional otherwise)",
    )
    parser.add_argument("--trial", type=int, default=1, help="RegDB trial, 1..10 (default: 1)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    parser.add_argument(
        "--port", type=int, default=None, help="port (default: Gradio's, 7860 or the next free one)"
    )
    parser.add_argument(
        "--share", action="store_true", help="make a public gradio.live link (default: off)"
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="feature cache (default: ~/.cache/cycletrans/app, or $CYCLETRANS_CACHE/app)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="where the models run: cpu, cuda, cuda:N or auto (default: cpu)",
    )
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
    from analysis.session import BASELINE, CYCLETRANS, DEFAULT_CHECKPOINTS, NOCYCLE

    given = {
        CYCLETRANS: args.checkpoint,
        NOCYCLE: args.nocycle_checkpoint,
        BASELINE: args.baseline_checkpoint,
    }
    if args.data_root is None:  # the demo: the shipped checkpoints unless overridden
        return {name: given[name] or DEFAULT_CHECKPOINTS[name] for name in given}
    return given


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD = 4 << 20


def return_freed_memory() -> bool:
    """Have glibc serve allocations of 4 MiB and more by mmap, so that a decoded image's buffers
    go back to the system when freed instead of staying in the heap of the thread that decoded
    it (glibc raises its threshold as large blocks are freed; 16 threads decoding one image each
    then keep 8x one image's memory). Returns whether it applied (glibc only)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


class ImmutableFiles:
    """ASGI middleware: served files are content-addressed (Gradio's cache, the app's media),
    so browsers may keep them: ``Cache-Control: private, max-age=31536000, immutable``."""

    PREFIX = b"/gradio_api/file="

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope.get("raw_path", b"").startswith(self.PREFIX):
            await self.app(scope, receive, send)
            return

        async def send_cached(message: dict) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"
                ]
                message = {
                    **message,
                    "headers": [
                        *headers,
                        (b"cache-control", b"private, max-age=31536000, immutable"),
                    ],
                }
            await send(message)

        await self.app(scope, receive, send_cached)


def serve(
    session: Any,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    block: bool = True,
    log: Any = None,
) -> tuple[Any, str]:
    """Build the UI of an :class:`~analysis.session.Session` and serve it.

    Only the app's media folder (thumbnails and query copies) is served besides Gradio's own
    cache; uploads are limited to ``MAX_UPLOAD``. ``block=False`` returns at once (the server
    runs in a thread; stop it with ``demo.close()``). ``log``: where the start-up phases and the
    address are reported (None: nowhere). Returns ``(demo, url)``.
    """
    from starlette.middleware import Middleware

    from analysis.session import phase
    from app.media import Media
    from app.ui import CSS, build_ui

    log = log or (lambda _: None)
    media = Media(session.cache_dir / "media")
    with phase(log, "interface") as done:
        demo = build_ui(session, media)
        done["text"] = "overview, default t-SNE and tables computed"
    demo.queue(default_concurrency_limit=2)
    _, url, share_url = demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        allowed_paths=[str(media.folder)],
        max_file_size=MAX_UPLOAD,
        footer_links=["api"],
        prevent_thread_lock=not block,
        quiet=True,
        css=CSS,
        app_kwargs={"middleware": [Middleware(ImmutableFiles)]},
    )
    where = "this machine only" if host == "127.0.0.1" else f"listening on {host}"
    log(
        f"serving at {url} ({where}"
        + (f"; public link {share_url}" if share_url else "; --share makes a public link")
        + ")"
    )
    return demo, url


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()

    def log(line: str) -> None:
        print(line, flush=True)

    return_freed_memory()
    log("libraries: loading torch, scikit-learn and gradio ...")
    import gradio  # noqa: F401  (timed here, not inside a later phase)

    from analysis.session import build_session
    from cycletrans.engine.distributed import resolve_device

    log(f"libraries: loaded ({time.perf_counter() - start:.1f} s)")
    try:
        session = build_session(
            data_root=args.data_root,
            dataset=args.dataset,
            checkpoints=checkpoints_from_args(args),
            trial=args.trial,
            cache_dir=args.cache_dir,
            device=str(resolve_device(args.device)),
            progress=sys.stderr.isatty(),
            log=log,
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    demo, _ = serve(session, args.host, args.port, args.share, block=False, log=log)
    log(f"ready: start-up took {time.perf_counter() - start:.1f} s (Ctrl-C stops the app)")
    demo.block_thread()
    return 0
