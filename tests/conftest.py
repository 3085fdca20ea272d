import os

import numpy as np
import pytest
import torch

# Tests share the machine with other work: keep torch to one thread per worker (pytest-xdist runs two).
torch.set_num_threads(1)
os.environ.setdefault("SPATTERN_TEST", "1")


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


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
