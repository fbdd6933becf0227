"""Measure the app as its users meet it: start-up, search, Grad-CAM, t-SNE, memory under load.

Runs ``python app.py`` on the demo set with the shipped demo checkpoints (``assets/checkpoints``)
in a subprocess and drives it through ``gradio_client``:

- start-up, until the page answers, with a cold feature cache (features of every test image)
  and a warm one; with ``--first-start`` also from an empty cycletrans cache (the demo set is
  generated too: what a new user waits for). The app's own phase lines are printed;
- ``/search`` of test images (infrared queries, seeded pick) and of new images (mirrored test
  images: embedded on the fly): median and 95th percentile seen by the client; the same
  searches with their result images fetched, alone and 20 at a time, by gradio_client (which
  opens a new connection per file) and over one kept-alive connection as a browser does (a
  reply with its images should cost close to the search itself);
- ``/explain`` (Grad-CAM of query and match for the three models, and the anchor maps);
- ``/tsne`` of 10 identities (precomputed at start-up) and of 20 (computed on demand);
- the server's peak memory (VmHWM) after all that, and again after 20 concurrent uploads of the
  worst accepted image (an RGBA PNG at the decoded-bytes limit: the most bytes decoded) and of the
  16-bit 6300 x 6300 PNG of the reliability report; and the peak of each phase (start-up,
  searches, Grad-CAM, t-SNE, each upload burst: VmHWM reset between phases through
  ``/proc/PID/clear_refs``), so a miss names the phase that caused it.

Targets: search median <= 0.3 s, Grad-CAM <= 1.5 s, t-SNE on demand <= 10 s, peak memory
<= 1.5 GB with the 20 worst uploads.

Example::

    python benchmarks/app_speed.py
    python benchmarks/app_speed.py --first-start --threads 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analysis.session import (  # noqa: E402
    BASELINE,
    CYCLETRANS,
    DEFAULT_CHECKPOINTS,
    DEMO_TRAIN_HINT,
    NOCYCLE,
)
from benchmarks.app_memory import memory_gb, reset_peak  # noqa: E402
from cycletrans.data.images import MAX_DECODED_BYTES, decoded_bytes  # noqa: E402

CONCURRENT = 20
TARGETS = {
    "search median (s)": 0.3,
    "Grad-CAM (s)": 1.5,
    "t-SNE on demand (s)": 10.0,
    f"peak memory after {CONCURRENT} worst uploads (GB)": 1.5,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--searches", type=int, default=50, help="test-image searches to time")
    p.add_argument(
        "--new-searches",
        type=int,
        default=10,
        help="new-image searches to time, and searches with downloads",
    )
    p.add_argument("--explains", type=int, default=5, help="Grad-CAM calls to time")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="OMP_NUM_THREADS of the server (default: torch's own choice)",
    )
    p.add_argument(
        "--first-start",
        action="store_true",
        help="also time a start from an empty cycletrans cache (generates the demo "
        "set, about a minute or more)",
    )
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def checkpoints() -> dict[str, Path]:
    """The shipped demo checkpoints; SystemExit naming the command that makes them if absent."""
    missing = [str(p) for p in DEFAULT_CHECKPOINTS.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: {DEMO_TRAIN_HINT}")
    return dict(DEFAULT_CHECKPOINTS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """``python app.py`` on a free port, its output lines collected."""

    def __init__(
        self,
        paths: dict[str, Path],
        cache: Path,
        threads: int | None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        environment = {**os.environ, **(env or {})}
        if threads:
            environment["OMP_NUM_THREADS"] = str(threads)
        command = [
            sys.executable,
            "app.py",
            "--port",
            str(self.port),
            "--cache-dir",
            str(cache),
            "--checkpoint",
            str(paths[CYCLETRANS]),
            "--nocycle-checkpoint",
            str(paths[NOCYCLE]),
            "--baseline-checkpoint",
            str(paths[BASELINE]),
        ]
        self.lines: list[str] = []
        start = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env=environment,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.seconds = self._wait(start)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def _wait(self, start: float) -> float:
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the app exited with code {self.process.returncode}:\n"
                    + "\n".join(self.lines[-20:])
                )
            try:
                with urllib.request.urlopen(self.url, timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.2)

    def phase_peak(self) -> float:
        """The server's peak memory (VmHWM, GB) since it started or since the last call; then
        reset to the current memory so the next phase has its own."""
        peak = memory_gb(self.process.pid)[1]
        reset_peak(self.process.pid)
        return peak

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def worst_images(work: Path) -> dict[str, Path]:
    """The upload that decodes to the most bytes (a square RGBA PNG at the decoded-bytes limit)
    and the reliability report's 16-bit PNG."""
    side = int((MAX_DECODED_BYTES / decoded_bytes("RGBA", (1, 1))) ** 0.5)
    ramp = (np.arange(side) * 255 // side).astype(np.uint8)
    rgba = np.empty((side, side, 4), np.uint8)
    rgba[...] = ramp[None, :, None]
    rgba[..., 3] = ramp[:, None]
    paths = {"RGBA": work / "worst-rgba.png", "16-bit": work / "thermal16.png"}
    Image.fromarray(rgba, "RGBA").save(paths["RGBA"])
    del rgba
    Image.fromarray(
        np.broadcast_to((np.arange(6300) * 10).astype(np.uint16), (6300, 6300)).copy()
    ).save(paths["16-bit"])
    return paths


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
        "(other processes on the machine slow every number below)"
    )
    work = Path(tempfile.mkdtemp(prefix="app-speed-"))
    try:
        return measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, work: Path) -> int:
    """Run the measurements with ``work`` as scratch folder (caches, images)."""
    from gradio_client import Client, handle_file

    from cycletrans.data import SYSUMM01
    from cycletrans.engine.data import demo_data_root

    paths = checkpoints()
    results: dict[str, float] = {}
    if args.first_start:
        first = App(
            paths,
            work / "first-cache",
            args.threads,
            env={"CYCLETRANS_CACHE": str(work / "empty-cycletrans-cache")},
        )
        first.stop()
        results["start-up, first ever (s)"] = first.seconds
        print("first start, the app's phases:\n  " + "\n  ".join(first.lines))
    test = SYSUMM01(demo_data_root()).test
    cache = work / "cache"
    cold = App(paths, cache, args.threads)
    cold.stop()
    app = App(paths, cache, args.threads)
    print("warm start, the app's phases:\n  " + "\n  ".join(app.lines))
    results.update(
        {"start-up, cold feature cache (s)": cold.seconds, "start-up, warm cache (s)": app.seconds}
    )
    peaks = {"start-up": app.phase_peak()}
    try:
        client = Client(app.url, verbose=False, download_files=False)
        downloading = Client(app.url, verbose=False)
        rng = np.random.default_rng(args.seed)
        infrared = [r.path for r in test if r.modality == 1]
        picks = rng.choice(len(infrared), size=args.searches, replace=False)

        def search(c: Client, path: str | Path) -> object:
            return c.predict(handle_file(str(path)), "infrared", CYCLETRANS, 10, api_name="/search")

        searches = [timed(lambda p=infrared[i]: search(client, p)) for i in picks]
        new = []
        for i in picks[: args.new_searches]:
            path = work / f"new-{i}.png"
            ImageOps.mirror(Image.open(infrared[i]).convert("RGB")).save(path)
            new.append(timed(lambda p=path: search(client, p)))
        browser = httpx.Client()  # one kept-alive connection, as a browser fetches images

        def search_and_fetch(path: str) -> None:
            for item in search(client, path)[0]:
                browser.get(f"{app.url}gradio_api/file={item['image']['path']}").raise_for_status()

        some = [infrared[i] for i in picks[: args.new_searches]]
        downloads = [timed(lambda p=p: search(downloading, p)) for p in some]
        fetched = [timed(lambda p=p: search_and_fetch(p)) for p in some]
        crowd = [infrared[i] for i in picks[:CONCURRENT]]
        with ThreadPoolExecutor(CONCURRENT) as pool:
            crowd_plain = list(pool.map(lambda p: timed(lambda: search(client, p)), crowd))
            crowd_downloads = list(pool.map(lambda p: timed(lambda: search(downloading, p)), crowd))
            crowd_fetched = list(pool.map(lambda p: timed(lambda: search_and_fetch(p)), crowd))
        peaks["searches"] = app.phase_peak()
        explains = [
            timed(
                lambda p=infrared[i]: client.predict(
                    handle_file(p), "infrared", 1, CYCLETRANS, api_name="/explain"
                )
            )
            for i in picks[: args.explains]
        ]
        peaks["Grad-CAM"] = app.phase_peak()
        tsne_default = timed(lambda: client.predict(10, args.seed, api_name="/tsne"))
        tsne_new = timed(lambda: client.predict(20, args.seed + 1, api_name="/tsne"))
        peaks["t-SNE"] = app.phase_peak()
        results.update(
            {
                "search median (s)": statistics.median(searches),
                "search p95 (s)": percentile(searches, 95),
                "new-image search median (s)": statistics.median(new),
                "new-image search p95 (s)": percentile(new, 95),
                "search + images, gradio_client, median (s)": statistics.median(downloads),
                "search + images, one connection, median (s)": statistics.median(fetched),
                f"{CONCURRENT} concurrent searches, median (s)": statistics.median(crowd_plain),
                f"{CONCURRENT} concurrent + images, gradio_client (s)": statistics.median(
                    crowd_downloads
                ),
                f"{CONCURRENT} concurrent + images, one connection (s)": statistics.median(
                    crowd_fetched
                ),
                "Grad-CAM (s)": statistics.median(explains),
                "t-SNE default view (s)": tsne_default,
                "t-SNE on demand (s)": tsne_new,
                "peak memory (GB)": max(peaks.values()),
            }
        )
        for name, path in worst_images(work).items():
            with ThreadPoolExecutor(CONCURRENT) as pool:
                seconds = list(
                    pool.map(lambda p: timed(lambda: search(client, p)), [path] * CONCURRENT)
                )
            results[f"{CONCURRENT} uploads of the {name} PNG, slowest (s)"] = max(seconds)
            peaks[f"{CONCURRENT} uploads of the {name} PNG"] = app.phase_peak()
        results[f"peak memory after {CONCURRENT} worst uploads (GB)"] = max(peaks.values())
        results.update({f"  peak during {phase} (GB)": peak for phase, peak in peaks.items()})
    finally:
        app.stop()
    print(
        f"demo test split: {len(test)} images; {args.searches} test-image searches, "
        f"{args.new_searches} new-image searches, {args.explains} Grad-CAM calls (top-10, "
        "CycleTrans, infrared queries; times seen by the client)"
    )
    for name, value in results.items():
        target = TARGETS.get(name)
        verdict = (
            ""
            if target is None
            else (f"  target <= {target}: " + ("met" if value <= target else "MISSED"))
        )
        print(f"{name:48s} {value:8.3f}{verdict}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
