"""A one-slot cache for tensors derived from parameters (used by KCM and DMM in eval mode).

At inference the anchors C, the prototypes P and the projections are constants, so products
such as C W_theta W_tau^T (eq. 5) or W_psi W_sigma^T P^T (eq. 7) can be computed once per
weights version. The cache is keyed on the parameters' identities,
storage, dtype, device and autograd ``_version`` counters (and on autocast being on), so
``load_state_dict``, in-place optimizer steps, ``.to()`` and replaced parameters all
invalidate it. It never caches in training mode, nor when autograd would need gradients for
the parameters (eval-mode Grad-CAM still gets correct gradients).

Example:
    >>> import torch
    >>> from torch import nn
    >>> lin = nn.Linear(4, 4).eval()
    >>> cache = ParameterCache()
    >>> with torch.no_grad():
    ...     first = cache.lookup(lin, (lin.weight,), lambda: lin.weight.t() @ lin.weight)
    ...     again = cache.lookup(lin, (lin.weight,), lambda: lin.weight.t() @ lin.weight)
    >>> first is again
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


def _key(params: Sequence[torch.Tensor]) -> tuple:
    autocast = torch.is_autocast_enabled(params[0].device.type)  # autocast changes the dtype
    return tuple((p, p._version, p.data_ptr(), p.dtype, p.device, autocast) for p in params)


def _same(a: tuple, b: tuple) -> bool:
    # Compare tensors by identity: tuple == would compare them element-wise.
    if len(a) != len(b):
        return False
    return all(x[0] is y[0] and x[1:] == y[1:] for x, y in zip(a, b, strict=True))


class ParameterCache:
    """Holds one tensor computed from ``params``; see the module docstring for the rules."""

    def __init__(self) -> None:
        # (key, value) replaced as one object, so concurrent readers never see a torn pair
        self._entry: tuple[tuple, torch.Tensor] | None = None

    @property
    def value(self) -> torch.Tensor | None:
        """The cached tensor, or None when the cache is empty."""
        entry = self._entry
        return None if entry is None else entry[1]

    def clear(self) -> None:
        self._entry = None

    def lookup(
        self,
        module: nn.Module,
        params: Sequence[torch.Tensor],
        compute: Callable[[], torch.Tensor],
    ) -> torch.Tensor | None:
        """Return the cached value of ``compute()``, or None where caching is not allowed.

        Caching is not allowed while ``module`` is in training mode, or when grad mode is on
        and one of ``params`` requires grad; the cache is then emptied and the caller computes
        its result on its own (differentiable) path.
        """
        if module.training or (torch.is_grad_enabled() and any(p.requires_grad for p in params)):
            self.clear()
            return None
        key = _key(params)
        entry = self._entry
        if entry is None or not _same(key, entry[0]):
            with torch.no_grad():
                entry = (key, compute())
            self._entry = entry
        return entry[1]
