"""Every IREE flag spattern uses lives here, because IREE renames them between releases (verified with 3.13).

A Target says how to compile (backend and codegen flags), which IREE runtime driver runs the module, where that
runtime lives (in-process Python, or `iree-run-module` under qemu for arm64), and which microkernel object (if
any) the CPU fast path links.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UnknownTargetError

# Dense convs run about 1.7x faster in NHWC on IREE's CPU codegen (DESIGN.md, "Measured so far").
CHANNELS_LAST_PREPROCESSING = (
    "--iree-preprocessing-pass-pipeline=builtin.module(util.func(iree-preprocessing-convert-conv-to-channels-last))"
)
# Data tiling + IREE's mmt4d microkernel for matmuls: IREE's own codegen for the 1x1 convs between CHW pattern
# convs is slow, data tiling packs them for mmt4d (ResNet-50 with patterns 1.12x; the figures:
# bench/results/pass-measurements.txt). Constant weights are packed at compile time (const-eval). The portable
# pattern lowering on CPUs gets them too: its batched matmuls run as mmt4d; bench/dense.py compares with and without.
# arm64 compiles with them too but stays without until it can be timed on a device.
DATA_TILING_MMT4D = ("--iree-opt-data-tiling", "--iree-llvmcpu-enable-ukernels=mmt4d")


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    compile_flags: tuple[str, ...]
    driver: str  # IREE HAL driver: "local-task" or "vulkan"
    runner: str  # "python": in-process iree.runtime; "qemu-aarch64": iree-run-module under qemu
    cpu_arch: str | None = None  # "x86_64" / "aarch64" for CPU targets (selects the microkernel object)
    dense_extra_flags: tuple[str, ...] = field(default=())  # flags that make dense convs fast on this target
    # spattern passes run on every compile for this target (dense models too), before a plan's passes: rewrites
    # of IR that the target's IREE codegen gets wrong.
    pre_passes: tuple[str, ...] = field(default=())
    # spattern passes run on every compile for this target after the plan's passes (so on the IR our lowering
    # wrote too): rewrites of IR that the target's IREE codegen gets wrong.
    post_passes: tuple[str, ...] = field(default=())

    @property
    def is_cpu(self) -> bool:
        return self.cpu_arch is not None

    @property
    def mmt4d_tile(self) -> int:
        """The f32 tile of IREE's mmt4d CPU microkernel on this target (16x16 with AVX-512, 8x8 with AVX2 and
        NEON), into whose layout the portable lowering gathers its taps; 0 off CPUs (the GPU form). x86 reads
        the host's features, as the host target compiles for them."""
        if self.cpu_arch == "aarch64":
            return 8
        if self.cpu_arch == "x86_64":
            from ..microkernels.kernels import host_has_avx512

            return 16 if host_has_avx512() else 8
        return 0

    def flags(self, dense_best: bool = True) -> list[str]:
        return [*self.compile_flags, *(self.dense_extra_flags if dense_best else ())]


_CPU = "--iree-hal-target-backends=llvm-cpu"
_VULKAN = "--iree-hal-target-backends=vulkan-spirv"
# IREE 3.13's CPU codegen takes a slow path for strided 1x1 convs (ResNet downsample convs; dense ResNet-50 at
# 224: 1.7x wall, 2.5x in summed per-dispatch time); see spattern/passes/strided_1x1_to_slice.py. arm64 gets it
# untimed (numerics checked under qemu: tests/test_targets.py).
_CPU_PRE_PASSES = ("strided-1x1-to-slice",)
# IREE's SPIR-V codegen races on NCHW depthwise convs (issue 7; see spattern/passes/depthwise_conv_to_generic.py).
_VULKAN_PRE_PASSES = ("depthwise-conv-to-generic",)
# IREE's SPIR-V codegen stores a pad's interior 2 floats off when the padded rows are whole vec4s (issue 19;
# see spattern/passes/pad_source_barrier.py).
_VULKAN_POST_PASSES = ("pad-source-barrier",)

TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        Target(
            "host",
            "this machine's CPU (benchmarks, tests): llvm-cpu for the host's features",
            (_CPU, "--iree-llvmcpu-target-cpu=host"),
            driver="local-task",
            runner="python",
            cpu_arch="x86_64",
            dense_extra_flags=(CHANNELS_LAST_PREPROCESSING, *DATA_TILING_MMT4D),
            pre_passes=_CPU_PRE_PASSES,
        ),
        Target(
            "arm64-android",
            "Android phones, ARM64 CPU (Cortex-A76 class, Android 14 API 34); run with iree-run-module on the phone",
            (_CPU, "--iree-llvmcpu-target-triple=aarch64-linux-android34", "--iree-llvmcpu-target-cpu=cortex-a76"),
            driver="local-task",
            runner="qemu-aarch64",
            cpu_arch="aarch64",
            dense_extra_flags=(CHANNELS_LAST_PREPROCESSING,),
            pre_passes=_CPU_PRE_PASSES,
        ),
        Target(
            "arm64-linux",
            "ARM64 Linux boards (generic armv8-a); checked here under qemu",
            (_CPU, "--iree-llvmcpu-target-triple=aarch64-unknown-linux-gnu"),
            driver="local-task",
            runner="qemu-aarch64",
            cpu_arch="aarch64",
            dense_extra_flags=(CHANNELS_LAST_PREPROCESSING,),
            pre_passes=_CPU_PRE_PASSES,
        ),
        Target(
            "vulkan",
            "any Vulkan 1.1 GPU (vp_android_baseline_2022 profile); the portable lowering, checked on lavapipe",
            (_VULKAN,),
            driver="vulkan",
            runner="python",
            pre_passes=_VULKAN_PRE_PASSES,
            post_passes=_VULKAN_POST_PASSES,
        ),
        Target(
            "vulkan-adreno",
            "Qualcomm Adreno phone GPUs (tuned codegen; wrong numbers on lavapipe, run it on a phone)",
            (_VULKAN, "--iree-vulkan-target=adreno"),
            driver="vulkan",
            runner="python",
            pre_passes=_VULKAN_PRE_PASSES,
            post_passes=_VULKAN_POST_PASSES,
        ),
        Target(
            "vulkan-mali",
            "Arm Mali (Valhall) phone GPUs (tuned codegen; wrong numbers on lavapipe, run it on a phone)",
            (_VULKAN, "--iree-vulkan-target=valhall"),
            driver="vulkan",
            runner="python",
            pre_passes=_VULKAN_PRE_PASSES,
            post_passes=_VULKAN_POST_PASSES,
        ),
    ]
}


def get_target(name: str | Target) -> Target:
    if isinstance(name, Target):
        return name
    try:
        return TARGETS[name]
    except KeyError:
        raise UnknownTargetError(
            f"unknown target {name!r}; valid targets: {', '.join(TARGETS)} (see `spattern targets`)"
        ) from None
