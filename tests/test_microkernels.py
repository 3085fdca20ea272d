"""Numerics of the C pattern microkernels (through ctypes) against torch conv2d, for both x86 ISAs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spattern.errors import ConfigError, PlanError
from spattern.patterns import all_masks
from spattern.microkernels import kernels, microkernel_abi
from spattern.passes.lower_to_microkernels import pack_pruned_conv
from spattern.microkernels.microkernel_abi import H, KernelLibrary, consumer_pads, pad_input
from conftest import require_microkernels  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def random_layer(rng: np.random.Generator, f: int, c: int, connectivity: float, all_patterns: bool = True):
    """A pruned weight whose kernels use all 56 patterns (cycled, then shuffled), with a kept mask."""
    pid = (np.arange(f * c) % 56).reshape(f, c) if all_patterns else rng.integers(0, 8, (f, c))
    pid = rng.permuted(pid.reshape(-1)).reshape(f, c)
    kept = rng.random((f, c)) >= connectivity
    w = rng.standard_normal((f, c, 3, 3)).astype(np.float32) * all_masks()[pid] * kept[:, :, None, None]
    return w, pid, kept


def torch_ref(x, w, b, stride, padding, relu):
    y = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                   None if b is None else torch.from_numpy(b), stride=stride, padding=padding)
    return (y.relu() if relu else y).numpy()


CASES = [  # n, f, c, h, w, stride, padding, connectivity, bias, relu
    (1, 5, 3, 9, 11, 1, 1, 0.0, True, False),
    (2, 70, 13, 17, 15, 1, 1, 0.5, True, True),
    (1, 64, 64, 20, 20, 1, 1, 0.0, False, False),
    (1, 130, 9, 6, 7, 1, 0, 0.5, True, False),
    (1, 64, 32, 20, 20, 2, 1, 0.0, True, True),
    (2, 33, 7, 13, 16, 2, 1, 0.5, False, False),
    (1, 17, 5, 75, 9, 2, 1, 0.0, True, False),
    (1, 8, 6, 7, 7, 2, 0, 0.0, True, True),  # 3x3 output: fewer outputs than one vector
    (1, 20, 4, 3, 3, 1, 1, 0.5, True, True),  # rows shorter than a vector (scalar write-out)
    (1, 66, 11, 30, 30, 1, 1, 0.5, True, False),  # row segments split across tiles
    (1, 20, 6, 10, 71, 2, 1, 0.5, True, True),  # stride 2, rows longer than a vector, segments across tiles
    (1, 300, 5, 20, 30, 1, 1, 0.5, True, True),  # >= 256 filters: 128-filter chunks (chunk_size)
    (1, 260, 4, 22, 40, 2, 1, 0.0, False, False),  # 128-filter chunks, stride 2, a short last chunk
    (1, 256, 3, 5, 5, 1, 1, 0.0, True, False),  # 256 filters but one tile: too few workgroups, 64-filter chunks
]


@pytest.mark.parametrize("variant", ["plain", "residual", "padded_output", "padded_residual"])
@pytest.mark.parametrize("isa", ["avx512", "avx2"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "n{}f{}c{}_{}x{}_s{}p{}_r{}_b{}_relu{}".format(*c))
def test_kernel_matches_torch(monkeypatch, isa, case, variant):
    """relu?(conv + bias) against torch; "residual": + a residual buffer of the output's shape (the fused
    epilogue); "padded_output": written with the zeros a following conv's microkernel reads around its input
    (stride 2 or 1 after it, alternately), every element of the buffer written; "padded_residual": the residual
    read from the interior of such a padded buffer (another conv's padded output)."""
    require_microkernels("x86_64")
    if isa == "avx512" and not kernels.host_has_avx512():
        pytest.skip("this CPU has no AVX-512")
    monkeypatch.setenv(kernels.ISA_ENV, isa)
    n, f, c, h, wd, stride, padding, conn, has_bias, relu = case
    rng = np.random.default_rng(hash(case) % 2**32)
    w, pid, kept = random_layer(rng, f, c, conn)
    b = rng.standard_normal(f).astype(np.float32) if has_bias else None
    x = rng.standard_normal((n, c, h, wd)).astype(np.float32)
    ref = torch_ref(x, w, b, stride, padding, False)
    res = rng.standard_normal(ref.shape).astype(np.float32) if "residual" in variant else None
    pads = consumer_pads(*ref.shape, 1 + CASES.index(case) % 2, 1) if variant == "padded_output" else (0, 0, 0, 0)
    res_pads = consumer_pads(*ref.shape, 2 - CASES.index(case) % 2, 1) if variant == "padded_residual" \
        else (0, 0, 0, 0)
    packed = pack_pruned_conv(w, pid, kept, b, x.shape, stride=stride, padding=padding, relu=relu,
                              residual=res is not None, out_pad=pads, res_pad=res_pads)
    res_buffer = res if res is None else np.pad(  # NaN around the residual: read only its interior
        res, ((0, 0), (0, 0), res_pads[:2], res_pads[2:]), constant_values=np.nan)
    lib = KernelLibrary.load("x86_64")
    assert lib is KernelLibrary.load("x86_64")
    out = np.full(packed.out_buffer_shape, np.nan, dtype=np.float32)
    y = lib.run(packed, pad_input(x, packed), out=out, residual=res_buffer)
    ref = ref + (res if res is not None else 0)
    ref = np.maximum(ref, 0) if relu else ref
    top, bottom, left, right = pads
    ref = np.pad(ref, ((0, 0), (0, 0), (top, bottom), (left, right)))
    assert y.shape == ref.shape
    assert not np.isnan(y).any()
    assert np.abs(y - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())
    if res is not None:
        with pytest.raises(ConfigError):
            lib.run(packed, pad_input(x, packed))


def test_packing_tables_are_consistent():
    rng = np.random.default_rng(1)
    w, pid, kept = random_layer(rng, 150, 20, 0.5)
    p = pack_pruned_conv(w, pid, kept, None, (1, 20, 8, 8))
    assert p.kept_kernels == kept.sum()
    assert p.weights.shape == (4 * kept.sum() + 150,)
    nf = p.table[p.table[20]: p.table[20] + 3]  # chunk_nf of 3 chunks
    assert sorted(nf.tolist()) == [50, 50, 50]
    # >= 256 filters and enough tiles: chunks of up to 128 filters; one tile: 64 (workgroups for the threads)
    for (h, wd), chunks in (((20, 30), [100, 100, 100]), ((5, 5), [60] * 5)):
        w, pid, kept = random_layer(rng, 300, 5, 0.5)
        q = pack_pruned_conv(w, pid, kept, None, (1, 5, h, wd))
        assert q.table[H["NCHUNKS"]] == len(chunks)
        nf = q.table[q.table[H["OFF_CHUNK_NF"]]: q.table[H["OFF_CHUNK_NF"]] + len(chunks)]
        assert sorted(nf.tolist()) == chunks


@pytest.mark.parametrize("reorder,reuse_loads", [(False, False), (True, False), (False, True)])
def test_ablation_packings_match_torch(reorder, reuse_loads):
    """FKR and LRE switched off (the ablation) change the order and the runs, never the result."""
    require_microkernels("x86_64")
    rng = np.random.default_rng(3)
    w, pid, kept = random_layer(rng, 70, 13, 0.5, all_patterns=False)
    b = rng.standard_normal(70).astype(np.float32)
    x = rng.standard_normal((1, 13, 17, 15)).astype(np.float32)
    full = pack_pruned_conv(w, pid, kept, b, x.shape)
    p = pack_pruned_conv(w, pid, kept, b, x.shape, reorder=reorder, reuse_loads=reuse_loads)

    def n_runs(q):  # run_start[nchunks * C]: the runs in total
        return int(q.table[q.table[H["OFF_RUN_START"]] + q.table[H["NCHUNKS"]] * 13])

    full_runs, p_runs = n_runs(full), n_runs(p)
    assert full_runs < p_runs
    if not reuse_loads:
        assert p_runs == p.kept_kernels  # every kernel its own run
    y = KernelLibrary.load("x86_64").run(p, pad_input(x, p))
    ref = torch_ref(x, w, b, 1, 1, False)
    assert np.abs(y - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())


def test_weights_outside_pattern_rejected():
    rng = np.random.default_rng(2)
    w, pid, kept = random_layer(rng, 4, 4, 0.0)
    w[0, 0] = 1.0
    with pytest.raises(PlanError):
        pack_pruned_conv(w, pid, kept, None, (1, 4, 5, 5))


def test_isa_selection(monkeypatch):
    monkeypatch.setenv(kernels.ISA_ENV, "avx2")
    assert kernels.isa_for_target("host") in {"x86_64_avx2", "aarch64_neon"}
    assert kernels.isa_for_target("aarch64-unknown-linux-gnu") == "aarch64_neon"
    assert kernels.isa_for_target("aarch64-linux-android34") == "aarch64_neon"
    monkeypatch.delenv(kernels.ISA_ENV)
    expect = "x86_64_avx512" if kernels.host_has_avx512() else "x86_64_avx2"
    assert kernels.isa_for_target("x86_64-unknown-linux-gnu") == expect


def test_objects_freestanding():
    require_microkernels("x86_64")
    for obj in (kernels.KERNEL_DIR / f"{kernel}_{isa}.o" for kernel in kernels.KERNELS
                for isa in kernels.kernel_isas(kernel)):
        undefined = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True).stdout.split()
        assert undefined == [], f"{obj.name} calls outside itself: {undefined}"


def test_generated_headers_match_python(monkeypatch):
    """kernels/patterns.h and kernels/abi_slots.h are what kernels/gen_headers.py writes from spattern/patterns.py
    and the packers' slot tables (H, ABI_MAGIC, HEADER_SIZE, ...); a slot the packer moves changes the header."""
    check = subprocess.run([sys.executable, str(ROOT / "kernels" / "gen_headers.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    spec = importlib.util.spec_from_file_location("gen_headers", ROOT / "kernels" / "gen_headers.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    text = gen.ABI_SLOTS_H.read_text()
    assert "  SPK_H_RESIDUAL = 23,\n" in text and '#define SPG_ABI_MAGIC 0x53504732 /* "SPG2" */' in text
    swapped = dict(microkernel_abi.H, RELU=microkernel_abi.H["STRIDE"], STRIDE=microkernel_abi.H["RELU"])
    monkeypatch.setattr(microkernel_abi, "H", swapped)
    assert gen.render_abi_slots() != text
    monkeypatch.setattr(microkernel_abi, "H", dict(swapped, OUT_WP=swapped["OUT_TOP"], OUT_TOP=swapped["OUT_WP"]))
    with pytest.raises(ValueError, match="consecutive"):
        gen.render_abi_slots()


_QEMU_HARNESS = r"""
#include <stddef.h>
#include <stdint.h>
#include "case.h"
void spattern_pattern_conv(const float *, const float *, size_t, size_t, size_t, const float *, const float *,
                           size_t, size_t, size_t, const int32_t *, const int32_t *, size_t, size_t, size_t,
                           const float *, const float *, size_t, size_t, size_t, float *, float *, size_t, size_t,
                           size_t, size_t);
static float out[OUT_N];
static void sys_exit(long code) {
  register long x0 __asm__("x0") = code;
  register long x8 __asm__("x8") = 93;
  __asm__ volatile("svc 0" : : "r"(x0), "r"(x8) : "memory");
  for (;;) {}
}
#ifndef RES_N /* no residual: the weights stand in (not read) */
#define RES W
#define RES_N W_N
#endif
void _start(void) {
  for (size_t i = 0; i < OUT_N; ++i) out[i] = __builtin_nanf(""); /* every element must be written */
  for (size_t g = 0; g < NWG; ++g)
    spattern_pattern_conv(IN, IN, 0, IN_N, 1, W, W, 0, W_N, 1, TAB, TAB, 0, TAB_N, 1, RES, RES, 0, RES_N, 1, out,
                          out, 0, OUT_N, 1, g);
  for (size_t i = 0; i < OUT_N; ++i) {
    const float d = out[i] - REF[i];
    if (!(d <= TOL && -d <= TOL)) sys_exit(1);
  }
  sys_exit(0);
}
"""


def neon_object_or_skip(kernel: str) -> tuple[str, Path]:
    """(the qemu-aarch64 binary, the aarch64 object of `kernel`), or skip the test where either is missing."""
    import shutil

    qemu = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    if qemu is None or shutil.which("clang") is None:
        pytest.skip("needs qemu-aarch64 and clang")
    try:
        return qemu, kernels.kernel_object("aarch64-unknown-linux-gnu", kernel).path
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"microkernels not built: {e}")


def run_neon_case(tmp_path: Path, qemu: str, obj: Path, symbol: str) -> int:
    """Links _QEMU_HARNESS around the C entry `symbol` of `obj` with tmp_path/case.h (IN, W, TAB, REF, optional RES,
    OUT_N, NWG, TOL) and runs it under qemu: its exit code (0: every output written and within TOL)."""
    (tmp_path / "h.c").write_text(_QEMU_HARNESS.replace("spattern_pattern_conv", symbol))
    exe = tmp_path / "a.out"
    subprocess.run(["clang", "--target=aarch64-linux-gnu", "-O1", "-ffreestanding", "-fno-builtin", "-nostdlib",
                    "-static", "-fuse-ld=lld", "-fno-stack-protector", f"-I{tmp_path}", str(tmp_path / "h.c"),
                    str(obj), "-o", str(exe)], check=True, capture_output=True)
    return subprocess.run([qemu, str(exe)], timeout=120).returncode


def _c_array(name: str, ctype: str, a: np.ndarray) -> str:
    fmt = (lambda v: f"{float(v)!r}f") if ctype == "float" else (lambda v: str(int(v)))
    body = ",".join(fmt(v) for v in a.reshape(-1))
    return f"static const {ctype} {name}[] = {{{body}}};\n#define {name}_N {a.size}\n"


@pytest.mark.parametrize("stride,f,residual", [(1, 70, False), (2, 70, False), (1, 300, False), (2, 70, True)])
def test_neon_object_matches_torch_under_qemu(tmp_path, stride, f, residual):
    """The aarch64 object (portable vector C, 4-lane NEON) run under qemu-aarch64 from a libc-free harness.
    The residual case also writes a padded output (a stride-1 consumer's padding)."""
    qemu, obj = neon_object_or_skip("pattern_conv")
    rng = np.random.default_rng(7 + stride)
    c, h, wd = 7, 13, 11 if stride == 1 else 37
    if f > 256:  # enough tiles for 128-filter chunks
        h, wd = 24, 30
    w, pid, kept = random_layer(rng, f, c, 0.5)
    b = rng.standard_normal(f).astype(np.float32)
    x = rng.standard_normal((1, c, h, wd)).astype(np.float32)
    out_shape = torch_ref(x, w, b, stride, 1, False).shape
    pads = consumer_pads(*out_shape, 1, 1) if residual else (0, 0, 0, 0)
    packed = pack_pruned_conv(w, pid, kept, b, x.shape, stride=stride, padding=1, relu=True, residual=residual,
                              out_pad=pads)
    res = rng.standard_normal(packed.out_shape).astype(np.float32)
    ref = np.maximum(torch_ref(x, w, b, stride, 1, False) + (res if residual else 0), 0)
    ref = np.pad(ref, ((0, 0), (0, 0), (pads[0], pads[1]), (pads[2], pads[3])))
    tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
    (tmp_path / "case.h").write_text(
        (_c_array("RES", "float", res) if residual else "")
        + _c_array("IN", "float", pad_input(x, packed)) + _c_array("W", "float", packed.weights)
        + _c_array("TAB", "int32_t", packed.table) + _c_array("REF", "float", ref)
        + f"#define OUT_N {ref.size}\n#define NWG {packed.workgroups}\n#define TOL {tol!r}f\n")
    assert run_neon_case(tmp_path, qemu, obj, "spattern_pattern_conv") == 0
