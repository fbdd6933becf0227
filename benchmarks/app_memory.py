"""Where the app's memory goes: resident memory after each step of its start-up, in one process.

Runs what ``python app.py`` does before it serves, one step at a time, and prints the resident
memory (VmRSS) after each step and the peak (VmHWM) during it (the peak is reset between steps
through ``/proc/self/clear_refs``; Linux only):

- the libraries: torch, torchvision (which imports ``torch._dynamo``, and triton where it is
  installed), gradio, the app's own modules;
- the session (``analysis.session.build_session``: the demo set, the three shipped models and
  their test features, from the cache after the first run);
- the modality-gap statistics and the cross-modality metrics of each model;
- the interface (``app.ui.build_ui``: the overview, the default t-SNE, the tables).

``benchmarks/app_speed.py`` measures the server under requests; this script says what the
baseline it starts from is made of.

Example::

    python benchmarks/app_memory.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def memory_gb(pid: int | str = "self") -> tuple[float, float]:
    """``(VmRSS, VmHWM)`` of process ``pid`` (default this one) in GB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 2**20
    if len(fields) < 2:
        raise RuntimeError(f"no VmRSS and VmHWM in /proc/{pid}/status")
    return fields["VmRSS"], fields["VmHWM"]


def reset_peak(pid: int | str = "self") -> None:
    """Reset process ``pid``'s VmHWM to its current resident memory (Linux)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def step(name: str, work: Callable[[], object]) -> object:
    """Run ``work``, print the memory after it and the peak during it; returns its result."""
    before = memory_gb()[0]
    reset_peak()
    start = time.perf_counter()
    result = work()
    rss, peak = memory_gb()
    print(
        f"{name:50s} {rss:6.3f} GB  ({rss - before:+.3f})  peak {peak:6.3f} GB  "
        f"{time.perf_counter() - start:5.1f} s",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="the app's feature cache (default: a new temporary folder, so features are "
        "extracted: pass the app's cache to measure a warm start)",
    )
    args = parser.parse_args(argv)
    if not Path("/proc/self/clear_refs").exists():
        raise SystemExit("needs Linux's /proc/self/status and /proc/self/clear_refs")
    from app.main import return_freed_memory

    return_freed_memory()  # as app.main does first
    print(f"{'step':50s} resident (change)  peak during    time")
    print(f"{'start':50s} {memory_gb()[0]:6.3f} GB")
    step("import torch", lambda: __import__("torch"))
    step("import torchvision", lambda: __import__("torchvision"))
    print(
        "  (torch._dynamo loaded: "
        f"{'torch._dynamo' in sys.modules}; triton loaded: {'triton' in sys.modules})"
    )
    step("import gradio", lambda: __import__("gradio"))
    step("import the app (analysis, app.ui, sklearn, ...)", lambda: __import__("app.ui"))
    from analysis.session import build_session
    from app.media import Media
    from app.ui import build_ui

    cache = args.cache_dir or tempfile.mkdtemp(prefix="app-memory-")
    session = step(
        "session: demo set, 3 models, test features",
        lambda: build_session(cache_dir=cache, progress=False, log=lambda _: None),
    )
    for name in session.model_names:
        dim = session.model(name).features.features.shape[1]
        step(f"gap statistics, {name} ({dim}-d)", lambda n=name: session.gap(n))
    for name in session.model_names:
        step(
            f"cross-modality metrics, {name}",
            lambda n=name: [session.cross_metrics(n, m) for m in ("infrared", "visible")],
        )
    media = Media(session.cache_dir / "media")
    step("interface (overview, t-SNE, tables)", lambda: build_ui(session, media))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
