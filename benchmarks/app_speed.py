"""Measure the app as its users meet it: start-up, search, Grad-CAM, t-SNE, memory.

Runs ``python app.py`` on the demo set (generated into the cache on first use) in a subprocess,
with the shipped demo checkpoints (``assets/checkpoints``). Through ``gradio_client`` it times:

- start-up with a cold feature cache (the first start: features of every test image) and with a
  warm one (imports, dataset, digests, models, cached features, server), until the page answers;
- ``/search`` of 50 test images (infrared queries, seeded pick) and of 10 new images (mirrored
  test images: embedded on the fly): median and 95th percentile of the response time seen by
  the client (upload, queue, search, the three ranked galleries' files registered), and again
  for 10 searches whose client also downloads the 30 result images, as a browser would;
- ``/explain`` (Grad-CAM of query and match for the three models, and the anchor maps);
- ``/tsne`` first (t-SNE of 10 identities for three models, plus the modality-gap statistics)
  and again (cached);
- the server's peak memory (VmHWM, the peak resident set of the process).

Targets: search median <= 0.3 s, Grad-CAM <= 1.5 s, t-SNE first <= 10 s, peak memory <= 1.5 GB.

Example::

    python benchmarks/app_speed.py
    python benchmarks/app_speed.py --threads 1   # OMP_NUM_THREADS for the server
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
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.context import (  # noqa: E402
    BASELINE,
    CYCLETRANS,
    DEFAULT_CHECKPOINTS,
    DEMO_TRAIN_HINT,
    NOCYCLE,
)

TARGETS = {"search median (s)": 0.3, "Grad-CAM (s)": 1.5, "t-SNE first (s)": 10.0,
           "peak memory (GB)": 1.5}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--searches", type=int, default=50, help="test-image searches to time")
    p.add_argument("--new-searches", type=int, default=10,
                   help="new-image searches to time, and searches with downloads")
    p.add_argument("--explains", type=int, default=5, help="Grad-CAM calls to time")
    p.add_argument("--threads", type=int, default=None,
                   help="OMP_NUM_THREADS of the server (default: torch's own choice)")
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


def start_app(paths: dict[str, Path], cache: Path, threads: int | None
              ) -> tuple[subprocess.Popen, str, float]:
    """``python app.py`` on a free port; returns (process, url, seconds until it answered)."""
    port = free_port()
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    command = [sys.executable, "app.py", "--port", str(port), "--cache-dir", str(cache),
               "--checkpoint", str(paths[CYCLETRANS]),
               "--nocycle-checkpoint", str(paths[NOCYCLE]),
               "--baseline-checkpoint", str(paths[BASELINE])]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return process, url, time.perf_counter() - start
        except OSError:
            time.sleep(0.2)


def peak_rss_gb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    raise RuntimeError("no VmHWM in /proc status")


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
          "(other processes on the machine slow every number below)")
    work = Path(tempfile.mkdtemp(prefix="app-speed-"))
    try:
        return measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, work: Path) -> int:
    """Run the measurements with ``work`` as scratch folder (checkpoints, cache, images)."""
    from gradio_client import Client, handle_file

    from cycletrans.data import SYSUMM01
    from cycletrans.engine.data import demo_data_root

    paths = checkpoints()
    test = SYSUMM01(demo_data_root()).test
    cache = work / "cache"

    process, _, cold = start_app(paths, cache, args.threads)
    process.terminate()
    process.wait()
    process, url, warm = start_app(paths, cache, args.threads)
    results: dict[str, float] = {"start-up, cold cache (s)": cold,
                                 "start-up, warm cache (s)": warm}
    try:
        client = Client(url, verbose=False, download_files=False)
        rng = np.random.default_rng(args.seed)
        infrared = [r.path for r in test if r.modality == 1]
        picks = rng.choice(len(infrared), size=args.searches, replace=False)
        searches = [timed(lambda p=infrared[i]: client.predict(
            handle_file(p), "infrared", CYCLETRANS, 10, api_name="/search")) for i in picks]
        new = []
        for i in picks[: args.new_searches]:
            path = work / f"new-{i}.png"
            ImageOps.mirror(Image.open(infrared[i]).convert("RGB")).save(path)
            new.append(timed(lambda p=path: client.predict(
                handle_file(str(p)), "infrared", CYCLETRANS, 10, api_name="/search")))
        downloading = Client(url, verbose=False)
        downloads = [timed(lambda p=infrared[i]: downloading.predict(
            handle_file(p), "infrared", CYCLETRANS, 10, api_name="/search"))
            for i in picks[: args.new_searches]]
        explains = [timed(lambda p=infrared[i]: client.predict(
            handle_file(p), "infrared", 1, CYCLETRANS, api_name="/explain"))
            for i in picks[: args.explains]]
        tsne_first = timed(lambda: client.predict(10, args.seed, api_name="/tsne"))
        tsne_cached = timed(lambda: client.predict(10, args.seed, api_name="/tsne"))
        results.update({
            "search median (s)": statistics.median(searches),
            "search p95 (s)": percentile(searches, 95),
            "new-image search median (s)": statistics.median(new),
            "new-image search p95 (s)": percentile(new, 95),
            "search + downloads median (s)": statistics.median(downloads),
            "Grad-CAM (s)": statistics.median(explains),
            "t-SNE first (s)": tsne_first,
            "t-SNE cached (s)": tsne_cached,
            "peak memory (GB)": peak_rss_gb(process.pid),
        })
    finally:
        process.terminate()
        process.wait()
    print(f"demo test split: {len(test)} images; {args.searches} test-image searches, "
          f"{args.new_searches} new-image searches, {args.explains} Grad-CAM calls (top-10, "
          "CycleTrans, infrared queries; times seen by the client)")
    for name, value in results.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else (f"  target <= {target}: "
                                             + ("met" if value <= target else "MISSED"))
        print(f"{name:32s} {value:8.3f}{verdict}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
