import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

# Tests share the machine with other work: keep torch to one thread per worker (pytest-xdist runs two).
torch.set_num_threads(1)
os.environ.setdefault("SPATTERN_TEST", "1")
# lavapipe (the CPU Vulkan driver the tests run on) compiles each SPIR-V pipeline with LLVM when a module loads; on
# a fresh machine (cold Mesa shader cache, as in CI) that was 50 s of a 57 s resnet18 test. "nopt" skips LLVM's
# optimization passes there (14 s); it changes how fast lavapipe's code runs, not what our module computes.
os.environ.setdefault("GALLIVM_PERF", "nopt")


def assert_close_to_torch(got: np.ndarray, ref: np.ndarray, rel: float = 1e-4) -> float:
    """The project's numerics bar: max abs error <= rel x max |reference output|."""
    assert got.shape == ref.shape, (got.shape, ref.shape)
    err = float(np.abs(got - ref).max())
    bound = rel * float(np.abs(ref).max())
    assert err <= bound, f"max abs error {err:.3e} > {bound:.3e} (= {rel} x max|ref|)"
    return err


def require_microkernels(target: str = "x86_64") -> None:
    """Skips the calling test when the pattern microkernel objects are not built (any missing-build reason)."""
    from spattern.microkernels import kernels

    try:
        kernels.kernel_object(target)
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"microkernels not built: {e}")


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory: pytest.TempPathFactory):
    """The module's own SPATTERN_CACHE (synthetic images, trained models), so no test reads a cache it did not fill."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SPATTERN_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def pruned_vgg_small_files(tmp_path_factory) -> SimpleNamespace:
    """A vgg_small (10 classes, 32x32) magnitude-pruned once per session and saved as the CLI gets it: its state
    dict and its plan folder. `.args`: the arguments `spattern.report.report_command` takes for it; `.n_planned`:
    how many layers the plan covers."""
    from spattern import models
    from spattern.pruning import PruneConfig, prune

    folder = tmp_path_factory.mktemp("pruned-vgg-small")
    model = models.build("vgg_small", num_classes=10, image_size=32)
    res = prune(model, torch.randn(1, 3, 32, 32),
                PruneConfig(method="magnitude", distill_steps=0, recalibrate_bn=False), progress=False)
    torch.save(res.model.state_dict(), folder / "w.pt")
    res.plan.save(folder / "plan")
    args = {"model": folder / "w.pt", "zoo": "vgg_small", "plan": folder / "plan", "num_classes": 10,
            "input_shape": (1, 3, 32, 32)}
    return SimpleNamespace(args=args, n_planned=len(res.plan.layers))
