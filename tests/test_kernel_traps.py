"""A microkernel never returns silently wrong (DESIGN.md, Microkernels): a table it does not understand (a bad
magic, tile, chunk, block, layout, work split, pattern id, filter index, or buffers smaller than the header says)
makes it trap, here through ctypes in a forked child (the trap kills the child: SIGILL on x86, SIGTRAP on
aarch64 under qemu), and a module whose packed table is corrupt fails its run instead of returning outputs."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spattern.microkernels import conv1x1_abi, kernels, maxpool_abi
from spattern.passes.lower_to_microkernels import pack_pruned_conv
from spattern.microkernels.microkernel_abi import H, KernelLibrary, pad_input
from conftest import require_microkernels
from test_microkernels import _QEMU_HARNESS, _c_array, neon_object_or_skip, random_layer


def call_in_child(kernel: str, buffers: list[np.ndarray], workgroups: int | range) -> int:
    """Calls `kernel`'s host object on the five buffers for every workgroup (or the given ids) in a forked child.
    Returns 0 when every call returned, else minus the signal that killed the child."""
    lib = KernelLibrary.load("x86_64", kernel)  # linked in the parent: the child only calls
    ids = range(workgroups) if isinstance(workgroups, int) else workgroups
    pid = os.fork()
    if pid == 0:  # the child: no core file, no faulthandler dump (pytest's) on the trap
        try:
            import faulthandler

            faulthandler.disable()
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            args = []
            for a in buffers:
                args += [a.ctypes.data, a.ctypes.data, 0, a.size, 1]
            for wg in ids:
                lib.fn(*args, wg)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


TRAP = -signal.SIGILL  # x86's ud2, what __builtin_trap() compiles to


# --- the pattern conv --------------------------------------------------------------------------------------------

def _pattern_case(stride: int = 1, residual: bool = False):
    rng = np.random.default_rng(5)
    w, pid, kept = random_layer(rng, 70, 6, 0.3)
    x = rng.standard_normal((1, 6, 11, 13)).astype(np.float32)
    packed = pack_pruned_conv(w, pid, kept, rng.standard_normal(70).astype(np.float32), x.shape, stride=stride,
                              residual=residual)
    res = np.zeros(packed.res_buffer_shape, np.float32) if residual else packed.weights
    return packed, [pad_input(x, packed), packed.weights, packed.table.copy(), res,
                    np.full(packed.out_buffer_shape, np.nan, np.float32)]


def _slot(table: np.ndarray, name: str) -> int:
    return int(table[H[name]])


def _first_run(table: np.ndarray) -> int:
    """The table index of chunk 0's first run's pattern id."""
    return _slot(table, "OFF_RUN_PID")


# Each corruption: its name -> a function that breaks one thing of the table in place.
PATTERN_CORRUPTIONS = {
    "magic": lambda t: t.__setitem__(H["MAGIC"], 0x53504B32),  # "SPK2": an older packer
    "tile": lambda t: t.__setitem__(H["TILE"], 64),
    "chunk": lambda t: t.__setitem__(H["CHUNK"], 64),
    "unknown_pattern_id": lambda t: t.__setitem__(_first_run(t), 56),
    "negative_pattern_id": lambda t: t.__setitem__(_first_run(t), -1),
    "filter_index_past_chunk": lambda t: t.view(np.uint8).__setitem__(4 * _slot(t, "OFF_FIDX"), 127),
    "runs_out_of_order": lambda t: t.__setitem__(_slot(t, "OFF_RUN_K") + 1, 0),
    "chunk_filter_past_F": lambda t: t.__setitem__(_slot(t, "OFF_CHUNK_FIL"), 70),
    "empty_chunk": lambda t: t.__setitem__(_slot(t, "OFF_CHUNK_NF"), 0),
    "oversized_chunk": lambda t: t.__setitem__(_slot(t, "OFF_CHUNK_NF"), 129),
    "table_offset_past_end": lambda t: t.__setitem__(H["OFF_RUN_PID"], len(t)),
    "stride_3": lambda t: t.__setitem__(H["STRIDE"], 3),
    "tile_count": lambda t: t.__setitem__(H["NTILES"], _slot(t, "NTILES") + 1),
    "tiles_per_group": lambda t: t.__setitem__(H["TILES_PER_GROUP"], 0),
    "kernel_count": lambda t: t.__setitem__(H["K"], _slot(t, "K") + 1),
    "padded_output_slots": lambda t: t.__setitem__(H["OUT_TOP"], 1),  # OUT_WP 0 (unpadded) with a TOP
    "output_plane_too_small": lambda t: (t.__setitem__(H["OUT_HP"], 2), t.__setitem__(H["OUT_WP"], 2)),
    "filter_count": lambda t: t.__setitem__(H["F"], 71),  # the chunks hold 70
}


def test_pattern_conv_reference_call_returns():
    """The harness itself: the intact table runs every workgroup and writes every output (so a trap below is the
    corruption's doing)."""
    require_microkernels("x86_64")
    packed, bufs = _pattern_case()
    assert call_in_child("pattern_conv", bufs, packed.workgroups) == 0
    out = bufs[4]
    KernelLibrary.load("x86_64").call(bufs, packed.workgroups)
    assert not np.isnan(out).any()


@pytest.mark.parametrize("what", list(PATTERN_CORRUPTIONS))
def test_pattern_conv_traps_on_a_corrupt_table(what):
    require_microkernels("x86_64")
    packed, bufs = _pattern_case()
    PATTERN_CORRUPTIONS[what](bufs[2])
    assert call_in_child("pattern_conv", bufs, packed.workgroups) == TRAP


@pytest.mark.parametrize("what", ["input", "weights", "output", "residual", "table"])
def test_pattern_conv_traps_on_a_short_buffer(what):
    """A buffer smaller than the header's geometry (the memref's size says so) traps before any access."""
    require_microkernels("x86_64")
    packed, bufs = _pattern_case(stride=2, residual=True)
    i = ["input", "weights", "table", "residual", "output"].index(what)
    bufs[i] = bufs[i].reshape(-1)[: (bufs[i].size - 1 if what != "table" else 20)]
    assert call_in_child("pattern_conv", bufs, packed.workgroups) == TRAP


def test_pattern_conv_traps_on_a_workgroup_past_the_split():
    require_microkernels("x86_64")
    packed, bufs = _pattern_case()
    assert call_in_child("pattern_conv", bufs, range(packed.workgroups, packed.workgroups + 1)) == TRAP


# --- the 1x1 conv and the max pool -------------------------------------------------------------------------------

def _conv1x1_case(layout: int):
    h, w = (1, 1) if layout == 2 else (7, 9)
    rng = np.random.default_rng(layout)
    packed = conv1x1_abi.pack_conv1x1(rng.standard_normal((40, 24)).astype(np.float32), None, h, w,
                                      layout=layout, workgroups=4)
    x = rng.standard_normal((24, h * w)).astype(np.float32)
    return packed, [x, packed.weights, packed.table.copy(), packed.weights,
                    np.empty(packed.out_buffer_shape, np.float32)]


G = conv1x1_abi.H
CONV1X1_CORRUPTIONS = {  # what -> (layout, corruption)
    "magic": (0, lambda t: t.__setitem__(G["MAGIC"], 0x53504731)),
    "unknown_layout": (0, lambda t: t.__setitem__(G["LAYOUT"], 3)),
    "block_of_layout_0": (0, lambda t: t.__setitem__(G["BLOCK"], 16)),
    "block_of_layout_1": (1, lambda t: t.__setitem__(G["BLOCK"], 8)),
    "layout_2_block_not_16s": (2, lambda t: t.__setitem__(G["BLOCK"], 24)),
    "layout_2_positions": (2, lambda t: (t.__setitem__(G["P"], 2), t.__setitem__(G["W"], 2))),
    "block_count": (0, lambda t: t.__setitem__(G["NBLOCKS"], int(t[G["NBLOCKS"]]) + 1)),
    "panels_past_positions": (0, lambda t: t.__setitem__(G["NPANELS"], int(t[G["NPANELS"]]) + 64)),
    "positions_not_h_by_w": (1, lambda t: t.__setitem__(G["P"], int(t[G["P"]]) - 1)),
    "blocks_per_group": (1, lambda t: t.__setitem__(G["BLOCKS_PER_GROUP"], 0)),
}


@pytest.mark.parametrize("what", list(CONV1X1_CORRUPTIONS))
def test_conv1x1_traps_on_a_corrupt_header(what):
    require_microkernels("x86_64")
    layout, corrupt = CONV1X1_CORRUPTIONS[what]
    packed, bufs = _conv1x1_case(layout)
    assert call_in_child("conv1x1", bufs, packed.workgroups) == 0  # intact: returns
    corrupt(bufs[2])
    assert call_in_child("conv1x1", bufs, packed.workgroups) == TRAP


@pytest.mark.parametrize("what", ["workgroup_past_the_split", "short_output", "short_table"])
def test_conv1x1_traps_on_a_short_buffer_or_a_workgroup_past_the_split(what):
    require_microkernels("x86_64")
    packed, bufs = _conv1x1_case(0)
    ids: int | range = packed.workgroups
    if what == "workgroup_past_the_split":
        ids = range(packed.workgroups, packed.workgroups + 1)
    elif what == "short_output":
        bufs[4] = bufs[4].reshape(-1)[:-1]
    else:  # fewer words than the header's slots
        bufs[2] = bufs[2][: conv1x1_abi.HEADER_SIZE - 1]
    assert call_in_child("conv1x1", bufs, ids) == TRAP


M = maxpool_abi.H
MAXPOOL_CORRUPTIONS = {
    "magic": lambda t: t.__setitem__(M["MAGIC"], 0),
    "output_rows": lambda t: t.__setitem__(M["HO"], int(t[M["HO"]]) + 1),
    "channels_per_group": lambda t: t.__setitem__(M["CPG"], 0),
    "padded_output_slots": lambda t: t.__setitem__(M["OUT_LEFT"], 2),
}


@pytest.mark.parametrize("what", [*MAXPOOL_CORRUPTIONS, "short_input", "short_table", "workgroup_past_channels"])
def test_maxpool_traps_on_a_corrupt_header(what):
    require_microkernels("x86_64")
    packed = maxpool_abi.pack_maxpool(6, 10, 12, workgroups=2)
    x = np.ones(packed.in_shape, np.float32)
    bufs = [x, packed.weights, packed.table.copy(), packed.weights, np.empty(packed.out_buffer_shape, np.float32)]
    assert call_in_child("maxpool2x2", bufs, packed.workgroups) == 0
    ids: int | range = packed.workgroups
    if what == "short_input":
        bufs[0] = x.reshape(-1)[:-1]
    elif what == "short_table":
        bufs[2] = bufs[2][: maxpool_abi.HEADER_SIZE - 1]
    elif what == "workgroup_past_channels":
        ids = range(packed.workgroups, packed.workgroups + 1)
    else:
        MAXPOOL_CORRUPTIONS[what](bufs[2])
    assert call_in_child("maxpool2x2", bufs, ids) == TRAP


# --- the aarch64 objects under qemu ------------------------------------------------------------------------------

def _run_neon(tmp_path: Path, qemu: str, obj: Path, symbol: str) -> int:
    """Links the libc-free harness of test_microkernels around `symbol` and runs it under qemu in tmp_path (no
    core file): its exit status, or minus the signal that ended it."""
    (tmp_path / "h.c").write_text(_QEMU_HARNESS.replace("spattern_pattern_conv", symbol))
    exe = tmp_path / "a.out"
    subprocess.run(["clang", "--target=aarch64-linux-gnu", "-O1", "-ffreestanding", "-fno-builtin", "-nostdlib",
                    "-static", "-fuse-ld=lld", "-fno-stack-protector", f"-I{tmp_path}", str(tmp_path / "h.c"),
                    str(obj), "-o", str(exe)], check=True, capture_output=True)
    return subprocess.run([qemu, str(exe)], cwd=tmp_path, capture_output=True, timeout=120,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0))).returncode


@pytest.mark.parametrize("kernel, what", [("pattern_conv", "intact"), ("pattern_conv", "unknown_pattern_id"),
                                          ("conv1x1", "magic")])
def test_neon_objects_trap_under_qemu(tmp_path, kernel, what):
    """aarch64's trap (brk: SIGTRAP), from the same harness that checks the NEON numerics; intact, it returns
    and its outputs match (exit 0)."""
    qemu, obj = neon_object_or_skip(kernel)
    if kernel == "pattern_conv":
        packed, bufs = _pattern_case()
        ref = np.empty(packed.out_buffer_shape, np.float32)
        KernelLibrary.load("x86_64").call([*bufs[:4], ref], packed.workgroups)
        table, workgroups, symbol = bufs[2], packed.workgroups, kernels.SYMBOL
        if what != "intact":
            PATTERN_CORRUPTIONS[what](table)
    else:
        packed, bufs = _conv1x1_case(0)
        ref = np.zeros(packed.out_buffer_shape, np.float32)
        table, workgroups, symbol = bufs[2], packed.workgroups, kernels.KERNELS[kernel]
        CONV1X1_CORRUPTIONS[what][1](table)
    (tmp_path / "case.h").write_text(
        _c_array("IN", "float", bufs[0]) + _c_array("W", "float", bufs[1]) + _c_array("TAB", "int32_t", table)
        + _c_array("REF", "float", ref)
        + f"#define OUT_N {ref.size}\n#define NWG {workgroups}\n#define TOL 1e-3f\n")
    expect = 0 if what == "intact" else -signal.SIGTRAP
    assert _run_neon(tmp_path, qemu, obj, symbol) == expect



# --- a whole module, and what the user sees ----------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _find_pattern_header(vmfb: bytes, c: int, f: int) -> int:
    """The byte offset of the packed table of the pattern conv C -> F in a module: IREE stores the table constant
    as is, so its header is the magic followed by the slots pack_conv wrote (TILE and CHUNK checked too)."""
    from spattern.microkernels.microkernel_abi import ABI_MAGIC, CHUNK, TILE

    at = vmfb.find(ABI_MAGIC.to_bytes(4, "little"))
    while at >= 0:
        words = np.frombuffer(vmfb[at: at + 4 * 32], dtype="<i4")
        if len(words) == 32 and (words[H["C"]], words[H["F"]], words[H["TILE"]], words[H["CHUNK"]]) == (c, f, TILE,
                                                                                                          CHUNK):
            return at
        at = vmfb.find(ABI_MAGIC.to_bytes(4, "little"), at + 1)
    raise AssertionError(f"no pattern-conv table {c} -> {f} in the module")


@pytest.fixture(scope="module")
def corrupt_module(tmp_path_factory):
    """A two-conv pattern model compiled for host with the microkernels, saved intact and with the first conv's
    table magic set to an older ABI's ("SPK2"), and its input."""
    require_microkernels("host")
    import torch
    from torch import nn

    import spattern
    from spattern.testing import random_plan_for

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1)).eval()
    pruned, plan = random_plan_for(model, filter_block=1, connectivity=0.3, seed=1)
    x = torch.randn(1, 8, 16, 16)
    compiled = spattern.compile(pruned, x, target="host", plan=plan, lowering="microkernels")
    assert compiled.info["pass_stats"]["lower-to-microkernels"]["convs"] == 2
    d = tmp_path_factory.mktemp("trap")
    compiled.save(d / "good.vmfb")
    bad = bytearray(compiled.vmfb)
    at = _find_pattern_header(compiled.vmfb, 8, 16)
    bad[at: at + 4] = (0x53504B32).to_bytes(4, "little")
    (d / "bad.vmfb").write_bytes(bytes(bad))
    np.save(d / "x.npy", x.numpy())
    return d, compiled, pruned(x).detach().numpy()


_RUN = """
import sys, numpy as np
from spattern.runtime.module import load
y = load(sys.argv[1]).run(np.load(sys.argv[2]))[0]
print("returned", y.shape)
"""


def test_a_corrupt_table_in_a_module_kills_its_run(corrupt_module):
    """The module with an intact table matches torch; with the magic changed, CompiledModel.run never returns:
    the kernel traps in IREE's worker and the process dies of SIGILL."""
    from conftest import assert_close_to_torch

    d, compiled, ref = corrupt_module
    assert_close_to_torch(compiled.run(np.load(d / "x.npy"))[0], ref)
    for name, expect in (("good", 0), ("bad", -signal.SIGILL)):
        proc = subprocess.run([sys.executable, "-c", _RUN, str(d / f"{name}.vmfb"), str(d / "x.npy")], cwd=ROOT,
                              capture_output=True, text=True, timeout=300,
                              preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)))
        assert proc.returncode == expect, proc.stderr[-2000:]
        assert ("returned" in proc.stdout) == (name == "good")


def test_spattern_run_names_the_trap_in_one_line(corrupt_module):
    """`spattern run` on the corrupt module: exit 2 and one error line that says what happened and what to do;
    on the intact one it prints the outputs (the forked child passes them back)."""
    d, _, _ = corrupt_module
    outs = {}
    for name in ("good", "bad"):
        outs[name] = subprocess.run([sys.executable, "-m", "spattern", "run", str(d / f"{name}.vmfb"), "--input",
                                     str(d / "x.npy")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                                    preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)))
    assert outs["good"].returncode == 0 and "output 0: shape (1, 16, 16, 16)" in outs["good"].stdout
    bad = outs["bad"]
    text = " ".join((bad.stdout + bad.stderr).split())
    assert bad.returncode == 2, text
    assert "Traceback" not in text and "microkernel" in text and "trapped (SIGILL)" in text
    assert "recompile it" in text and "bad.vmfb" in text


def test_run_isolated_passes_results_and_errors_back():
    from spattern.errors import InputError
    from spattern.runtime.trap_guard import is_trap, run_isolated

    y = run_isolated(lambda: [np.arange(5.0)], "m.vmfb")
    np.testing.assert_array_equal(y[0], np.arange(5.0))

    def fail():
        raise InputError("bad input 0")

    with pytest.raises(InputError, match="bad input 0"):
        run_isolated(fail, "m.vmfb")
    assert is_trap(-signal.SIGILL) and is_trap(-signal.SIGTRAP) and not is_trap(-signal.SIGSEGV)
    assert not is_trap(1)


def test_an_arm64_module_with_a_corrupt_table_fails_with_one_line():
    """arm64-linux under qemu (iree-run-module in a child process): the NEON kernel's SIGTRAP becomes the same
    ModelLoadError line; the intact module returns."""
    import torch
    from torch import nn

    import spattern
    from spattern.errors import ModelLoadError
    from spattern.runtime.module import CompiledModel
    from spattern.runtime.runners import target_availability
    from spattern.runtime.targets import get_target
    from spattern.testing import random_plan_for

    require_microkernels("aarch64-unknown-linux-gnu")
    availability = target_availability(get_target("arm64-linux"))
    if not availability.runs_here:
        pytest.skip(availability.reason)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1)).eval()
    pruned, plan = random_plan_for(model, filter_block=1, connectivity=0.3, seed=1)
    x = torch.randn(1, 8, 16, 16)
    compiled = spattern.compile(pruned, x, target="arm64-linux", plan=plan, lowering="microkernels")
    assert compiled.run(x.numpy())[0].shape == (1, 16, 16, 16)
    bad = bytearray(compiled.vmfb)
    at = _find_pattern_header(compiled.vmfb, 8, 16)
    bad[at: at + 4] = (0x53504B32).to_bytes(4, "little")
    with pytest.raises(ModelLoadError, match=r"microkernel .* trapped \(SIGTRAP\) .* recompile it"):
        CompiledModel(vmfb=bytes(bad), target=compiled.target).run(x.numpy())
