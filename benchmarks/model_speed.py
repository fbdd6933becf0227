"""Measure what the CycleTrans head costs on top of the backbone: inference and training.

Times ``embed`` per image (eval mode, no grad) and one training step (forward + loss +
backward + Adam step on a P x (K visible + K infrared) batch) of two variants, by default
``baseline`` and ``full`` on ResNet-50 at 384x192, with random weights. The two models run
interleaved, alternating which goes first in each round, so that load from other processes
hits both. Each call is also split into backbone time and head time (hooks on the backbone's
output), which gives a ratio that is robust to load: the same backbone time plus each model's
own head (and optimizer) time.

Targets: inference ratio <= 1.10 (the paper's own: 1.21), training-step
ratio <= 1.25.

Example:
    python benchmarks/model_speed.py                    # ResNet-50, 384x192, CPU
    python benchmarks/model_speed.py --backbone resnet18 --height 128 --width 64 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cycletrans.models import BACKBONES, VARIANTS, ReIDModel, build_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--variants",
        nargs=2,
        default=["baseline", "full"],
        choices=VARIANTS,
        metavar="VARIANT",
        help="the reference variant, then the one compared to it",
    )
    p.add_argument("--backbone", default="resnet50", choices=BACKBONES)
    p.add_argument("--height", type=int, default=384)
    p.add_argument("--width", type=int, default=192)
    p.add_argument("--num-classes", type=int, default=395, help="395 = SYSU-MM01 train + val")
    p.add_argument("--embed-batch", type=int, default=8, help="images per embed call")
    p.add_argument("--ids", type=int, default=2, help="P identities per training batch")
    p.add_argument("--per-modality", type=int, default=2, help="K images per modality and id")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds before measuring")
    p.add_argument("--repeats", type=int, default=5, help="timed embed rounds")
    p.add_argument("--train-repeats", type=int, default=3, help="timed training-step rounds")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class Clock:
    """Timestamps inside one call: when the backbone's forward ends (a forward hook) and when
    the gradient reaches the backbone's output (a tensor hook), so a call splits into backbone
    and head time. Both parts of one call see the same load from other processes."""

    def __init__(self, model: ReIDModel, device: str) -> None:
        self.device = device
        self.backbone_done = self.grad_reached = 0.0
        model.backbone.register_forward_hook(self._forward_done)

    def now(self) -> float:
        _sync(self.device)
        return time.perf_counter()

    def _forward_done(self, module, inputs, output) -> None:
        self.backbone_done = self.now()
        if output.requires_grad:
            output.register_hook(self._grad_reached)

    def _grad_reached(self, grad: torch.Tensor) -> None:
        self.grad_reached = self.now()


def interleaved(step, count: int, rounds: int, warmup: int) -> list[list[dict]]:
    """Call ``step(i)`` for each of ``count`` models per round, alternating the order; keep the
    timings (dicts of seconds) of the rounds after the warm-up."""
    times: list[list[dict]] = [[] for _ in range(count)]
    for r in range(warmup + rounds):
        for i in range(count) if r % 2 == 0 else reversed(range(count)):
            timing = step(i)
            if r >= warmup:
                times[i].append(timing)
    return times


def median(timings: list[dict], key: str) -> float:
    return statistics.median(t[key] for t in timings)


def paired_ratio(times: list[list[dict]], key: str) -> float:
    """Median over rounds of (second model / first model), each pair run back to back."""
    return statistics.median(b[key] / a[key] for a, b in zip(times[0], times[1], strict=True))


def flops(fn) -> float:
    """Floating-point operations of convolutions and matrix products in ``fn()`` (torch's
    flop counter): a load-independent measure of the work."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def training_batch(args: argparse.Namespace) -> tuple[torch.Tensor, ...]:
    per_id = 2 * args.per_modality
    labels = torch.arange(args.ids).repeat_interleave(per_id)
    modalities = torch.tensor(([0] * args.per_modality + [1] * args.per_modality) * args.ids)
    images = torch.randn(len(labels), 3, args.height, args.width)
    return images.to(args.device), modalities.to(args.device), labels.to(args.device)


def report(
    names: list[str],
    times: list[list[dict]],
    keys: list[str],
    unit: float,
    label: str,
    target: float,
) -> None:
    """Medians of each part per model, the fastest total, and three estimates of the ratio."""
    print(f"  {'':>16}  " + "  ".join(f"{k:>10}" for k in keys) + f"  {'min total':>10}")
    for name, timings in zip(names, times, strict=True):
        fastest = unit * min(t["total"] for t in timings)
        print(
            f"  {name:>16}: "
            + "  ".join(f"{unit * median(timings, k):10.2f}" for k in keys)
            + f"  {fastest:10.2f}"
        )
    pooled = statistics.median(t["backbone"] for timings in times for t in timings)
    rest = [median(timings, "total") - median(timings, "backbone") for timings in times]
    fastest = [min(t["total"] for t in timings) for timings in times]
    print(
        f"  ratio {names[1]}/{names[0]} of {label} (target <= {target:.2f}):\n"
        f"    median of back-to-back pairs  {paired_ratio(times, 'total'):.3f}\n"
        f"    ratio of the fastest rounds   {fastest[1] / fastest[0]:.3f}\n"
        f"    one shared backbone time      {(pooled + rest[1]) / (pooled + rest[0]):.3f}"
        "  (pooled median backbone + each model's median remainder)"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    names = args.variants
    models: list[ReIDModel] = [
        build_model(v, args.backbone, args.num_classes).to(args.device) for v in names
    ]
    clocks = [Clock(m, args.device) for m in models]
    print(
        f"device={args.device} threads={torch.get_num_threads()} backbone={args.backbone} "
        f"input={args.height}x{args.width} classes={args.num_classes}"
    )

    images = torch.randn(args.embed_batch, 3, args.height, args.width, device=args.device)

    def embed_call(i: int) -> dict:
        clock = clocks[i]
        start = clock.now()
        models[i].embed(images, "visible")
        end = clock.now()
        n = args.embed_batch
        return {
            "total": (end - start) / n,
            "backbone": (clock.backbone_done - start) / n,
            "head": (end - clock.backbone_done) / n,
        }

    for m in models:
        m.eval()
    embed = interleaved(embed_call, 2, args.repeats, args.warmup)
    print(
        f"\nembed (eval, no grad), batch {args.embed_batch}, ms per image, median of "
        f"{args.repeats} rounds after {args.warmup} warm-up rounds:"
    )
    report(names, embed, ["total", "backbone", "head"], 1000, "embed time", 1.10)
    embed_flops = [
        flops(lambda m=m: m.embed(images, "visible")) / args.embed_batch for m in models
    ]  # eval caches are warm: steady-state work

    batch = training_batch(args)
    optimizers = [
        torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=3.5e-4) for m in models
    ]

    def train_step(i: int) -> dict:
        clock, model, images, (modalities, labels) = clocks[i], models[i], batch[0], batch[1:]
        start = clock.now()
        optimizers[i].zero_grad(set_to_none=True)
        out = model(images, modalities, labels)
        loss = model.loss(out, labels, modalities)["loss"]
        forward_done = clock.now()
        loss.backward()
        backward_done = clock.now()
        optimizers[i].step()
        end = clock.now()
        backbone = (clock.backbone_done - start) + (backward_done - clock.grad_reached)
        head = (forward_done - clock.backbone_done) + (clock.grad_reached - forward_done)
        return {
            "total": end - start,
            "backbone": backbone,
            "head": head,
            "optimizer": end - backward_done,
        }

    for m in models:
        m.train()
    train = interleaved(train_step, 2, args.train_repeats, 1)
    print(
        f"\ntraining step (forward + loss + backward + Adam), batch {args.ids} x "
        f"({args.per_modality} + {args.per_modality}) = {len(batch[0])} images, seconds, "
        f"median of {args.train_repeats} rounds after 1 warm-up round (head = head and loss, "
        "forward and backward):"
    )
    report(names, train, ["total", "backbone", "head", "optimizer"], 1, "step time", 1.25)

    def forward_backward(i: int) -> None:
        images, modalities, labels = batch
        out = models[i](images, modalities, labels)
        models[i].loss(out, labels, modalities)["loss"].backward()

    train_flops = [flops(lambda i=i: forward_backward(i)) for i in range(2)]
    print("\nwork (GFLOP of convolutions and matrix products, torch.utils.flop_counter):")
    for name, e, t in zip(names, embed_flops, train_flops, strict=True):
        print(
            f"  {name:>16}: embed {e / 1e9:8.2f} per image, forward + backward "
            f"{t / 1e9:8.1f} per step"
        )
    print(
        f"  ratio {names[1]}/{names[0]}: embed {embed_flops[1] / embed_flops[0]:.3f}, "
        f"training step {train_flops[1] / train_flops[0]:.3f}"
    )


if __name__ == "__main__":
    main()
