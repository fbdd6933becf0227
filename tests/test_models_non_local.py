"""AGW's non-local block against a plain position-by-position implementation of its formula.

z_i = x_i + W(y_i), y_i = sum_j f(x_i, x_j) g(x_j), with theta, phi, g, W 1x1 convolutions and
W followed by BatchNorm. ``"dot"`` (AGW's released code): f = theta(x_i) . phi(x_j) / N, N the
number of positions; ``"embedded_gaussian"``: f = softmax_j(theta(x_i) . phi(x_j)).
"""

from __future__ import annotations

import pytest
import torch

from cycletrans.models import NonLocalBlock


def conv1x1(conv: torch.nn.Conv2d, v: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution at one position: ``[C_in] -> [C_out]``."""
    return conv.weight[:, :, 0, 0] @ v + conv.bias


def reference(block: NonLocalBlock, x: torch.Tensor) -> torch.Tensor:
    """The block's output computed one position at a time (BatchNorm in eval mode)."""
    conv, bn = block.W
    out = torch.empty_like(x)
    _, _, h, w = x.shape
    places = [(r, c) for r in range(h) for c in range(w)]
    for b in range(len(x)):
        theta = [conv1x1(block.theta, x[b, :, r, c]) for r, c in places]
        phi = [conv1x1(block.phi, x[b, :, r, c]) for r, c in places]
        g = [conv1x1(block.g, x[b, :, r, c]) for r, c in places]
        for i, (r, c) in enumerate(places):
            scores = torch.stack([theta[i] @ phi_j for phi_j in phi])
            if block.pairwise == "dot":
                f = scores / len(places)
            else:
                f = torch.exp(scores - scores.max()) / torch.exp(scores - scores.max()).sum()
            y = sum(f_j * g_j for f_j, g_j in zip(f, g, strict=True))
            z = conv1x1(conv, y)
            z = (z - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
            out[b, :, r, c] = x[b, :, r, c] + z
    return out


@pytest.mark.parametrize("pairwise", ["dot", "embedded_gaussian"])
def test_non_local_block_equals_the_position_by_position_formula(pairwise):
    torch.manual_seed(0)
    block = NonLocalBlock(8, pairwise).double().eval()
    with torch.no_grad():  # a W that is not the identity's zero, and non-trivial statistics
        bn = block.W[1]
        bn.weight.normal_()
        bn.bias.normal_()
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 8, 3, 2, dtype=torch.double)
    with torch.no_grad():
        torch.testing.assert_close(block(x), reference(block, x))


def test_the_dot_product_is_divided_by_the_number_of_positions():
    """Doubling the map (same content twice) leaves "dot" unchanged: sum over 2N / 2N."""
    torch.manual_seed(0)
    block = NonLocalBlock(8, "dot").double().eval()
    with torch.no_grad():
        block.W[1].weight.fill_(1.0)
        x = torch.randn(1, 8, 2, 2, dtype=torch.double)
        twice = torch.cat([x, x], dim=3)  # [1, 8, 2, 4]
        torch.testing.assert_close(block(twice)[..., :2], block(x))
