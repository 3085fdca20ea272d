"""Layer-wise reconstruction: Gram statistics of a conv's inputs, ADMM under the pattern structure, exact refit.

For one conv with weight W [F, D] (D = C*9, plus a bias column when the conv has a bias) and im2col'd inputs X
[P, D] at P sampled output positions, the loss ||X W^T - Y||^2 only needs H = X^T X / P and B = Y^T X / P, so
inputs are streamed into these and never stored. ADMM splits W = Z with Z in the structured set: the W-step is one
ridge solve shared by all filters (a Cholesky factor of H + rho diag(d) per rho level), the Z-step the projection
of W + U (importance d = diag(H): the exact projection in the scaled norm), then U += W - Z. rho grows
geometrically so W and Z meet. The final mask is then fixed and the kept weights refitted exactly per filter.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .library import Structure, project


@dataclass
class LayerStats:
    """Normalised least-squares statistics of one conv: H [D', D'] and B [F, D'] (float64), D' = D (+1 bias)."""

    H: torch.Tensor
    B: torch.Tensor
    yy: float  # mean over positions of the squared target summed over filters, for relative errors
    has_bias: bool

    def error(self, w: torch.Tensor) -> float:
        """Mean squared output error of weights w [F, D'] (relative to the target energy)."""
        w = w.to(torch.float64)
        e = float((w @ self.H * w).sum() - 2 * (w * self.B).sum()) + self.yy
        return max(e, 0.0) / max(self.yy, 1e-30)


def sample_positions(n: int, h: int, w: int, count: int, gen: torch.Generator) -> torch.Tensor:
    """[P, 3] (image, row, col) output positions, sorted by image, sampled without replacement."""
    total = n * h * w
    if count >= total:
        idx = torch.arange(total)
    else:
        idx = torch.sort(torch.randperm(total, generator=gen)[:count]).values
    return torch.stack([idx // (h * w), (idx // w) % h, idx % w], dim=1)


def patches(x: torch.Tensor, conv: nn.Conv2d, pos: torch.Tensor) -> torch.Tensor:
    """[P, C*9] im2col rows of input x [N, C, H, W] at output positions pos [P, 3] (image index local to x),
    ordered like weight.reshape(F, C*9)."""
    ph, pw = conv.padding  # type: ignore[misc]
    sh, sw = conv.stride
    xp = F.pad(x, (pw, pw, ph, ph))
    n, r, c = pos[:, 0], pos[:, 1] * sh, pos[:, 2] * sw
    taps = [xp[n, :, r + dy, c + dx] for dy in range(3) for dx in range(3)]  # each [P, C]
    return torch.stack(taps, dim=2).reshape(pos.shape[0], -1)


class StatsAccumulator:
    """Streams (X, Y) chunks into H = X^T X and B = Y^T X in float64."""

    def __init__(self, d: int, f: int, has_bias: bool):
        self.has_bias = has_bias
        dd = d + int(has_bias)
        self.H = torch.zeros(dd, dd, dtype=torch.float64)
        self.B = torch.zeros(f, dd, dtype=torch.float64)
        self.yy = 0.0
        self.count = 0

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        # float32 products (4x faster on CPU), accumulated across chunks in float64
        x = x.to(torch.float32)
        if self.has_bias:
            x = torch.cat([x, torch.ones(x.shape[0], 1, dtype=torch.float32)], 1)
        y = y.to(torch.float32)
        self.H += (x.T @ x).to(torch.float64)
        self.B += (y.T @ x).to(torch.float64)
        self.yy += float((y.to(torch.float64) ** 2).sum())
        self.count += x.shape[0]

    def finish(self) -> LayerStats:
        p = max(self.count, 1)
        return LayerStats(self.H / p, self.B / p, self.yy / p, self.has_bias)


def _full_weight(conv: nn.Conv2d) -> torch.Tensor:
    w = conv.weight.detach().reshape(conv.out_channels, -1).to(torch.float64)
    if conv.bias is not None:
        w = torch.cat([w, conv.bias.detach().to(torch.float64)[:, None]], 1)
    return w


def _mask_full(mask: torch.Tensor, has_bias: bool) -> torch.Tensor:
    """[F, C, 9] bool -> [F, D'] bool (the bias column always free)."""
    m = mask.reshape(mask.shape[0], -1)
    if has_bias:
        m = torch.cat([m, torch.ones(m.shape[0], 1, dtype=torch.bool)], 1)
    return m


def _importance(stats: LayerStats, c: int) -> torch.Tensor:
    d = torch.diagonal(stats.H)[: c * 9]
    return torch.clamp(d, min=1e-8 * float(d.mean()) + 1e-30).reshape(c, 9)


def _ridge(stats: LayerStats) -> float:
    return 1e-6 * float(torch.diagonal(stats.H).mean()) + 1e-12


def structure_of(w: torch.Tensor, c: int, library: list[int], filter_block: int, connectivity: float,
                 importance: torch.Tensor | None) -> Structure:
    return project(w[:, : c * 9].reshape(w.shape[0], c, 9), library, filter_block, connectivity, importance)


def admm(stats: LayerStats, w0: torch.Tensor, c: int, library: list[int], filter_block: int, connectivity: float,
         iters: int = 24, rho_range: tuple[float, float] = (1e-2, 1e2)) -> Structure:
    """Structure found by ADMM on min ||W X - Y||^2 s.t. W in the pattern/connectivity set, started at w0."""
    # The iterations run in float32 (the factor per rho level and the shared solves dominate the cost); the
    # structure they find is then refitted in float64 by `refit`.
    H, B = stats.H.float(), stats.B.float()
    d_full = torch.diagonal(H).clone()
    d_full = torch.clamp(d_full, min=1e-8 * float(d_full.mean()) + 1e-30)
    if stats.has_bias:
        d_full[-1] = 0.0  # the bias is unconstrained: no coupling penalty
    imp = _importance(stats, c)
    eye = torch.eye(H.shape[0], dtype=H.dtype) * _ridge(stats)
    levels = max(1, min(8, iters // 3))
    per_level = max(1, math.ceil(iters / levels))
    rhos = [rho_range[0] * (rho_range[1] / rho_range[0]) ** (i / max(1, levels - 1)) for i in range(levels)]
    w = w0.float().clone()
    s = structure_of(w, c, library, filter_block, connectivity, imp)
    mfull = _mask_full(s.mask, stats.has_bias)
    z = w * mfull
    u = torch.zeros_like(w)
    done = 0
    prev_rho = rhos[0]
    for rho in rhos:
        u *= prev_rho / rho  # scaled dual follows rho
        prev_rho = rho
        L = torch.linalg.cholesky(H + rho * torch.diag(d_full) + eye)
        for _ in range(per_level):
            if done >= iters:
                break
            rhs = B + rho * (z - u) * d_full
            w = torch.cholesky_solve(rhs.T, L).T
            v = w + u
            s = structure_of(v, c, library, filter_block, connectivity, imp)
            mfull = _mask_full(s.mask, stats.has_bias)
            z = v * mfull
            u = v - z
            done += 1
    return s


@contextlib.contextmanager
def _one_thread():
    """Batched LAPACK calls on one thread: torch 2.13's CPU build runs the batch in an OpenMP parallel_for and MKL
    threads each LU again inside it. With 2 threads a batch of 12 600x600 solves did not finish in 300 s (one thread:
    0.4 s) and MKL printed "Parameter 6 was incorrect on entry to DLASWP"; refit hung in it for over 10 minutes."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def refit(stats: LayerStats, mask: torch.Tensor, w_init: torch.Tensor, direct_flops: float = 2e11,
          cg_iters: int = 80) -> torch.Tensor:
    """Least-squares weights [F, D'] supported on mask ([F, C, 9]; bias column free): exact per-filter solves
    (batched Cholesky on the kept taps) when affordable, else batched preconditioned CG warm-started at w_init."""
    H, B = stats.H, stats.B
    m = _mask_full(mask, stats.has_bias)
    f, dd = m.shape
    counts = m.sum(1)
    smax = int(counts.max()) if f else 0
    if smax == 0:
        return torch.zeros_like(B)
    ridge = _ridge(stats)
    out = torch.zeros(f, dd, dtype=torch.float64)
    if f * smax ** 3 / 3 <= direct_flops:
        order = torch.argsort(~m, dim=1, stable=True)[:, :smax]  # kept indices first, in order
        valid = torch.arange(smax)[None, :] < counts[:, None]
        chunk = max(1, int(2.5e8 // (8 * smax * smax)))
        for a in range(0, f, chunk):
            idx, val = order[a:a + chunk], valid[a:a + chunk]
            hs = H[idx[:, :, None], idx[:, None, :]]
            vv = val[:, :, None] & val[:, None, :]
            hs = torch.where(vv, hs, torch.zeros((), dtype=hs.dtype))
            hs = hs + torch.diag_embed(torch.where(val, ridge, 1.0).to(hs.dtype))
            rhs = torch.where(val, torch.gather(B[a:a + chunk], 1, idx), torch.zeros((), dtype=hs.dtype))
            with _one_thread():
                sol = torch.linalg.solve(hs, rhs[:, :, None])[:, :, 0]
            sol = torch.where(val, sol, torch.zeros((), dtype=sol.dtype))
            out[a:a + chunk].scatter_(1, idx, sol)
        return out
    # Batched Jacobi-preconditioned CG, one independent system per filter, in float32 for speed.
    Hf = (H + torch.eye(dd, dtype=H.dtype) * ridge).float()
    mf = m.float()
    dinv = mf / torch.diagonal(Hf)[None, :].clamp_min(1e-30)
    x = (w_init.float() * mf)
    r = (B.float() - x @ Hf) * mf
    zt = r * dinv
    p = zt.clone()
    rz = (r * zt).sum(1)
    b_norm = (B.float() * mf).norm(dim=1).clamp_min(1e-30)
    for _ in range(cg_iters):
        ap = (p @ Hf) * mf
        alpha = rz / (p * ap).sum(1).clamp_min(1e-30)
        x = x + alpha[:, None] * p
        r = r - alpha[:, None] * ap
        if float((r.norm(dim=1) / b_norm).max()) < 1e-5:
            break
        zt = r * dinv
        rz_new = (r * zt).sum(1)
        p = zt + (rz_new / rz.clamp_min(1e-30))[:, None] * p
        rz = rz_new
    return x.to(torch.float64) * m
