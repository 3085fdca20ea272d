"""The int8 arithmetic, defined once: what the PyTorch integer reference computes and what the C kernels must
compute bit for bit (a leaf contract, like `patterns.py`; it imports nothing of ours).

Representation (chosen after XNNPACK's QS8/QU8 "fp32" requantization and ONNX Runtime's QDQ / QLinearConv):
- weights: int8 in [-127, 127], symmetric, one float32 scale per output channel (max|w| / 127; an all-zero
  channel gets scale 1). -128 is never used, so a negated weight still fits, and a pruned zero quantizes to 0.
- activations: uint8, one float32 scale and one integer zero point per tensor. After a ReLU the zero point is 0;
  elsewhere it is asymmetric (the range always contains 0, so real 0 is exact: padding is the zero point).
- a conv / linear accumulates u8 x s8 products in int32: acc = bias_q + sum(x_q * w_q). The input zero point is
  folded into the int32 bias once (bias_q = round(b / (s_x s_w)) - z_x * sum(w_q)), so the inner loop is the
  bare dot product VPDPBUSD / SDOT do; padding must then hold z_x (real 0), as the epilogue writes it.
- requantize (conv, linear, standalone ReLU, concat inputs, average pool): one float32 multiplier per output
  channel, M = float32(s_x s_w / s_y), computed in float64 and rounded to float32 once; the plan stores it, so no
  later stage recomputes it. y_q = clamp(round_half_even(float32(acc) * M) + z_y, lo, hi). Every step is one IEEE
  operation with one rounding (int32 -> float32 round-to-nearest-even, one float32 multiply, float -> int
  round-half-even), so it is the same on AVX-512 (vcvtdq2ps, vmulps, vcvtps2dq), ARMv8 NEON (scvtf, fmul,
  fcvtns) and SPIR-V (correctly rounded conversions and multiply, RoundEven). The zero point is added as an
  integer after rounding, so no compiler can contract it into an FMA. Why fp32 and not gemmlowp's fixed-point
  multiplier + shift (XNNPACK "rndnu"): it is fewer instructions on both CPU targets (XNNPACK's own default
  on x86 and ARMv8), its rounding is round-half-even like the float model it replaces, and it is still exact:
  float32(acc) only rounds where |acc| > 2^24, identically everywhere.
  ReLU is the clamp: lo = z_y (= 0 when z_y is 0). The u8 range is [0, 255].
- residual add: integer only, one rounding, as XNNPACK's QS8/QU8 vadd: two int32 multipliers m_a, m_b =
  round(s_a / s_y * 2^k), m_b likewise, with one shared shift k (the largest k <= 30 keeping both below 2^21,
  so 255 * 2^21 * 2 fits int32). acc = (a_q - z_a) m_a + (b_q - z_b) m_b;
  y_q = clamp(((acc + 2^(k-1)) >> k) + z_y, lo, hi), with an arithmetic shift (round half up). No float, so no
  contraction hazard where two products meet.
- max pool works on u8 directly (max commutes with the monotone map); its output keeps the input's scale and
  zero point. Flatten / view / dropout keep them too.
- the network input is quantized from float32: x_q = clamp(round_half_even(x / s) + z, 0, 255) (one IEEE
  division); an output is dequantized as (q - z) * s in float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCHEME = "spattern-int8-v1"  # names this file's arithmetic in a saved plan; change it when the arithmetic changes
U8_MIN, U8_MAX = 0, 255
W_MAX = 127
ADD_MULTIPLIER_LIMIT = 1 << 21
ADD_MAX_SHIFT = 30


def _f32(value: float) -> float:
    """value rounded to the nearest float32, as a Python float (exact in JSON)."""
    return float(torch.tensor(value, dtype=torch.float64).to(torch.float32))


@dataclass(frozen=True)
class ActQuant:
    """Per-tensor u8 quantization: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int

    def to_json(self) -> dict[str, float | int]:
        return {"scale": self.scale, "zero_point": self.zero_point}


def act_quant(lo: float, hi: float) -> ActQuant:
    """The u8 grid for values seen in [lo, hi]: widened to hold 0 (so real 0, the padding, is exact); zero point
    0 when lo >= 0 (after a ReLU), else asymmetric."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"activation range [{lo}, {hi}] is not finite")
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = _f32((hi - lo) / U8_MAX)
    zero_point = 0 if lo == 0.0 else int(min(U8_MAX, max(U8_MIN, round(-lo / scale))))
    return ActQuant(scale, zero_point)


def weight_scales(weight: torch.Tensor) -> torch.Tensor:
    """float32 [F]: max|w| / 127 per output channel (dim 0); 1 for an all-zero channel."""
    amax = weight.detach().reshape(weight.shape[0], -1).abs().amax(1).to(torch.float64)
    return torch.where(amax > 0, amax / W_MAX, torch.ones_like(amax)).to(torch.float32)


def quantize_weight(weight: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """int8 weights: round_half_even(w / s_c) clamped to [-127, 127]; zeros stay zero."""
    s = scales.to(torch.float32).reshape(-1, *([1] * (weight.dim() - 1)))
    return torch.clamp(torch.round(weight.detach().to(torch.float32) / s), -W_MAX, W_MAX).to(torch.int8)


def quantize_input(x: torch.Tensor, q: ActQuant) -> torch.Tensor:
    """float32 -> u8: clamp(round_half_even(x / s) + z, 0, 255)."""
    y = torch.round(x.to(torch.float32) / torch.tensor(q.scale, dtype=torch.float32)).to(torch.int32) + q.zero_point
    return torch.clamp(y, U8_MIN, U8_MAX).to(torch.uint8)


def dequantize(x_q: torch.Tensor, q: ActQuant) -> torch.Tensor:
    """u8 -> float32: (q - z) * s."""
    return (x_q.to(torch.int32) - q.zero_point).to(torch.float32) * torch.tensor(q.scale, dtype=torch.float32)


def requant_scale(s_in: float, s_weight: torch.Tensor | float, s_out: float) -> torch.Tensor:
    """The float32 multiplier(s) M = s_in * s_w / s_out, computed in float64 and rounded once."""
    sw = torch.as_tensor(s_weight, dtype=torch.float64)
    return (float(s_in) * sw / float(s_out)).to(torch.float32)


def fold_bias(bias: torch.Tensor | None, s_in: float, s_weight: torch.Tensor, z_in: int, w_q: torch.Tensor
              ) -> torch.Tensor:
    """int32 [F]: round_half_even(b / (s_in s_w)) - z_in * sum(w_q) per output channel (the zero-point term
    folded in); saturated to int32."""
    f = w_q.shape[0]
    b = torch.zeros(f, dtype=torch.float64) if bias is None else bias.detach().to(torch.float64)
    bq = torch.round(b / (float(s_in) * s_weight.to(torch.float64))).to(torch.int64)
    bq = bq - int(z_in) * w_q.reshape(f, -1).to(torch.int64).sum(1)
    return torch.clamp(bq, -(2 ** 31), 2 ** 31 - 1).to(torch.int32)


def requantize(acc: torch.Tensor, scale: torch.Tensor, zero_point: int, lo: int = U8_MIN, hi: int = U8_MAX,
               channel_dim: int = 1) -> torch.Tensor:
    """int32 accumulators -> u8: clamp(round_half_even(float32(acc) * M_c) + z, lo, hi); M per channel along
    channel_dim, or one scalar."""
    if acc.dtype != torch.int32:
        raise TypeError(f"requantize takes int32 accumulators, got {acc.dtype}")
    m = scale.to(torch.float32)
    if m.dim() == 1 and m.numel() > 1:
        shape = [1] * acc.dim()
        shape[channel_dim] = m.numel()
        m = m.reshape(shape)
    y = torch.round(acc.to(torch.float32) * m).to(torch.int32) + int(zero_point)
    return torch.clamp(y, lo, hi).to(torch.uint8)


@dataclass(frozen=True)
class AddQuant:
    """Integer residual-add parameters: y = ((a - z_a) m_a + (b - z_b) m_b) rounded >> shift, + z_y."""

    multiplier_a: int
    multiplier_b: int
    shift: int

    def to_json(self) -> dict[str, int]:
        return {"multiplier_a": self.multiplier_a, "multiplier_b": self.multiplier_b, "shift": self.shift}


def add_quant(s_a: float, s_b: float, s_out: float) -> AddQuant:
    """The largest shift <= 30 keeping both multipliers below 2^21 (so the int32 sum cannot overflow)."""
    ra, rb = float(s_a) / float(s_out), float(s_b) / float(s_out)
    shift = ADD_MAX_SHIFT
    while shift > 1 and max(round(ra * 2 ** shift), round(rb * 2 ** shift)) >= ADD_MULTIPLIER_LIMIT:
        shift -= 1
    ma, mb = round(ra * 2 ** shift), round(rb * 2 ** shift)
    if max(ma, mb) >= ADD_MULTIPLIER_LIMIT:
        raise ValueError(f"residual add scale ratios {ra:.3g}, {rb:.3g} are too large for the int32 add")
    return AddQuant(int(ma), int(mb), shift)


def add_requantize(a_q: torch.Tensor, a: ActQuant, b_q: torch.Tensor, b: ActQuant, p: AddQuant, out: ActQuant,
                   lo: int = U8_MIN, hi: int = U8_MAX) -> torch.Tensor:
    """u8 + u8 -> u8 in int32: clamp((((a - z_a) m_a + (b - z_b) m_b + 2^(k-1)) >> k) + z_y, lo, hi)."""
    acc = (a_q.to(torch.int32) - a.zero_point) * p.multiplier_a + (b_q.to(torch.int32) - b.zero_point) * p.multiplier_b
    y = torch.bitwise_right_shift(acc + (1 << (p.shift - 1)), p.shift) + out.zero_point
    return torch.clamp(y, lo, hi).to(torch.uint8)
