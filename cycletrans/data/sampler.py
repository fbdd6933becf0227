"""Cross-modality batch sampler: P identities x (K visible + K infrared) images per batch.

The paper trains on batches of 8 identities with 4 visible and 4 infrared images each (64
images). Every batch this sampler yields is a flat list of dataset indices laid out as::

    [id_1 visible x K, id_2 visible x K, ..., id_P visible x K,
     id_1 infrared x K, id_2 infrared x K, ..., id_P infrared x K]

so ``batch[i]`` and ``batch[P*K + i]`` show the same person in the two modalities.

How the draws are made (all from ``numpy.random.default_rng([seed, epoch])``, so an epoch is
reproducible and ``set_epoch`` changes it):

* identities are taken in order from a stream of random permutations of the usable identities
  (each identity once per permutation); each step takes the next ``P * world_size`` of them
  and rank ``r`` gets the ``r``-th block of P, so the ranks of one step never share an identity
  and together walk through the permutation. When a step straddles two permutations, the
  identities it already holds are moved just past its end in the next permutation, so a step
  never repeats an identity.
* the K images of an identity and modality come the same way from a stream of permutations of
  that person's images, so an epoch cycles through all of them; a person with fewer than K
  images of a modality gets all of them plus random repeats (sampling with replacement).
* identities without any visible or without any infrared image are left out, with a warning.

Epoch length (``len(sampler)``): ``num_batches`` if given, else with ``epoch_pass="larger"``
``ceil(max(#visible, #infrared) / (P * K * world_size))`` counted over usable identities, i.e.
about one pass over the larger modality per epoch across all ranks, or with ``"paired"`` (the
authors' code) ``ceil(sum over identities of min(#visible, #infrared) / (P * K * world_size))``,
one pass over the images that can be paired with one of the other modality (about 372 batches
of 64 on SYSU-MM01 instead of 696). All ranks have the same length.

Resuming: ``state_dict()`` is ``{"epoch", "position"}`` (position = batches of the epoch
already handed out); after ``load_state_dict`` the next iteration continues with exactly the
batches an uninterrupted run would have produced. A DataLoader with workers fetches batches
ahead of training, so a trainer should save the number of batches it actually trained on as
``position``.

Example:
    >>> labels = [0] * 6 + [1] * 6
    >>> modalities = [0, 0, 0, 1, 1, 1] * 2
    >>> sampler = CrossModalitySampler(labels, modalities, num_ids=2, num_per_modality=2)
    >>> batch = next(iter(sampler))
    >>> len(batch), len(sampler)
    (8, 2)
    >>> # loader = DataLoader(dataset, batch_sampler=sampler); sampler.set_epoch(epoch)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler

from cycletrans.data.records import preview
from cycletrans.modality import INFRARED, VISIBLE

EPOCH_PASSES = ("larger", "paired")


class CrossModalitySampler(Sampler[list[int]]):
    """Batch sampler of P identities x (K visible + K infrared) dataset indices.

    Args:
        labels: ``[N]`` identity label of every dataset item (e.g. ``ReIDDataset.labels``).
        modalities: ``[N]`` 0 visible / 1 infrared of every item (``ReIDDataset.modalities``).
        num_ids: P, identities per batch (per rank).
        num_per_modality: K, images per identity and modality.
        seed: non-negative seed; batches depend only on (seed, epoch, rank, world_size).
        num_batches: batches per epoch per rank; default: see the module docstring.
        epoch_pass: "larger" or "paired", the default epoch length (module docstring).
        rank, world_size: this process's place among distributed ranks; taken from
            ``torch.distributed`` when it is initialised, else 0 and 1.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        modalities: Sequence[int] | np.ndarray,
        num_ids: int = 8,
        num_per_modality: int = 4,
        seed: int = 0,
        num_batches: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        epoch_pass: str = "larger",
    ) -> None:
        labels, modalities = np.asarray(labels), np.asarray(modalities)
        if labels.ndim != 1 or labels.shape != modalities.shape or labels.size == 0:
            raise ValueError(
                "labels and modalities must be non-empty 1-D sequences of the same length, got "
                f"shapes {labels.shape} and {modalities.shape}"
            )
        if not np.isin(modalities, (VISIBLE, INFRARED)).all():
            raise ValueError(
                f"modalities must be 0 (visible) or 1 (infrared), found "
                f"{preview(sorted(set(modalities.tolist()) - {0, 1}))}"
            )
        for name, value in (("num_ids", num_ids), ("num_per_modality", num_per_modality)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.num_ids, self.num_per_modality, self.seed = num_ids, num_per_modality, seed
        self.rank, self.world_size = _rank_and_world_size(rank, world_size)

        # identity -> (indices of its visible images, indices of its infrared images)
        self._pools: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        lacking = []
        for label in np.unique(labels).tolist():
            own = labels == label
            pools = tuple(np.flatnonzero(own & (modalities == m)) for m in (VISIBLE, INFRARED))
            if all(p.size for p in pools):
                self._pools[label] = pools
            else:
                lacking.append(label)
        if lacking:
            warnings.warn(
                f"{len(lacking)} identities have no visible or no infrared image and are never "
                f"sampled: {preview(lacking)}",
                stacklevel=2,
            )
        self.identities = np.array(sorted(self._pools), dtype=np.int64)
        needed = num_ids * self.world_size
        if self.identities.size < needed:
            raise ValueError(
                f"CrossModalitySampler needs at least num_ids x world_size = {needed} identities "
                f"with both visible and infrared images, found {self.identities.size}"
            )
        if epoch_pass not in EPOCH_PASSES:
            raise ValueError(f"epoch_pass must be one of {EPOCH_PASSES}, got {epoch_pass!r}")
        if num_batches is None:
            sizes = np.array(
                [[p[m].size for m in (VISIBLE, INFRARED)] for p in self._pools.values()]
            )  # [ids, 2]
            images = sizes.sum(axis=0).max() if epoch_pass == "larger" else sizes.min(axis=1).sum()
            num_batches = math.ceil(images / (num_per_modality * needed))
        elif num_batches < 1:
            raise ValueError(f"num_batches must be at least 1, got {num_batches}")
        self.num_batches = int(num_batches)
        self._epoch = 0
        self._position = 0

    @property
    def batch_size(self) -> int:
        """Images per batch on this rank: 2 * P * K."""
        return 2 * self.num_ids * self.num_per_modality

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._epoch_batches(self._epoch)
        while self._position < len(batches):
            self._position += 1
            yield batches[self._position - 1]
        self._position = 0

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s batches from now on (a new epoch starts at its first batch)."""
        if epoch < 0:
            raise ValueError(f"epoch must be non-negative, got {epoch}")
        if epoch != self._epoch:
            self._epoch, self._position = int(epoch), 0

    def state_dict(self) -> dict[str, int]:
        """``{"epoch": e, "position": batches of epoch e already yielded}``."""
        return {"epoch": self._epoch, "position": self._position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a :meth:`state_dict`: the next batch is batch ``position`` of ``epoch``."""
        if set(state) != {"epoch", "position"}:
            raise ValueError(f"expected keys 'epoch' and 'position', got {sorted(state)}")
        epoch, position = int(state["epoch"]), int(state["position"])
        if epoch < 0 or not 0 <= position <= self.num_batches:
            raise ValueError(
                f"invalid sampler state {state}: need epoch >= 0 and 0 <= position <= "
                f"{self.num_batches}"
            )
        self._epoch, self._position = epoch, position

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of ``epoch``; every rank draws all ranks' batches, then slices."""
        rng = np.random.default_rng([self.seed, epoch])
        p, k = self.num_ids, self.num_per_modality
        id_stream: list[int] = []
        image_streams: dict[tuple[int, int], list[int]] = {}
        batches = []
        for _ in range(self.num_batches):
            step_ids = _take(id_stream, self.identities, p * self.world_size, rng)
            draws = {
                (pid, m): _take(image_streams.setdefault((pid, m), []), self._pools[pid][m], k, rng)
                for pid in step_ids
                for m in (VISIBLE, INFRARED)
            }
            mine = step_ids[self.rank * p : (self.rank + 1) * p]
            batches.append([i for m in (VISIBLE, INFRARED) for pid in mine for i in draws[pid, m]])
        return batches


def _take(stream: list[int], items: np.ndarray, count: int, rng: np.random.Generator) -> list[int]:
    """Pop ``count`` distinct items from a stream of random permutations of ``items``.

    When fewer than ``count`` remain, a fresh permutation of all items is appended, reordered
    only so that its first ``count - len(stream)`` items are not among those still in the stream.
    With fewer items than ``count``: every item once plus random repeats (with replacement).
    """
    if items.size < count:
        extra = rng.choice(items, size=count - items.size, replace=True)
        return rng.permutation(np.concatenate([items, extra])).tolist()
    if len(stream) < count:
        fresh, held = rng.permutation(items).tolist(), set(stream)
        first = [x for x in fresh if x not in held][: count - len(stream)]
        chosen = set(first)
        stream.extend(first + [x for x in fresh if x not in chosen])
    taken = stream[:count]
    del stream[:count]
    return taken


def _rank_and_world_size(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Explicit values, else torch.distributed's when initialised, else (0, 1)."""
    initialised = dist.is_available() and dist.is_initialized()
    if world_size is None:
        world_size = dist.get_world_size() if initialised else 1
    if rank is None:
        rank = dist.get_rank() if initialised else 0
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(
            f"need world_size >= 1 and 0 <= rank < world_size, got rank {rank}, "
            f"world_size {world_size}"
        )
    return int(rank), int(world_size)
