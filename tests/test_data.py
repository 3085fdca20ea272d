"""Dataset loaders: digits, the generated shapes task, CIFAR-10 binary folders (never pickle), Batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spattern import data
from spattern.errors import DatasetError


def _write_cifar(folder, n_per_file: int = 5, files=("data_batch_1.bin", "data_batch_2.bin", "test_batch.bin")):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in files:
        labels = rng.integers(0, 10, n_per_file).astype(np.uint8)
        pixels = rng.integers(0, 256, (n_per_file, 3072)).astype(np.uint8)
        (folder / name).write_bytes(np.concatenate([labels[:, None], pixels], 1).tobytes())
        written[name] = (labels, pixels)
    return written


def test_cifar10_binary_folder(tmp_path):
    written = _write_cifar(tmp_path / "cifar")
    x, y = data.read_cifar10_bin(tmp_path / "cifar", "train")
    assert x.shape == (10, 3, 32, 32) and x.dtype == np.uint8 and y.shape == (10,)
    labels, pixels = written["data_batch_1.bin"]
    assert np.array_equal(y[:5], labels) and np.array_equal(x[0].reshape(-1), pixels[0])
    xt, yt = data.read_cifar10_bin(tmp_path / "cifar", "test")
    assert xt.shape == (5, 3, 32, 32)
    (a, b), (c, d) = data.cifar10(tmp_path / "cifar")
    assert a.dtype == torch.float32 and abs(float(a.mean())) < 1e-4 and c.shape == (5, 3, 32, 32)
    (tr, _), _ = data.load_task(f"cifar10:{tmp_path / 'cifar'}")
    assert tr.shape[0] == 10
    # the official archive's inner folder is found too
    _write_cifar(tmp_path / "outer" / "cifar-10-batches-bin")
    assert data.read_cifar10_bin(tmp_path / "outer")[0].shape[0] == 10


def test_cifar10_errors(tmp_path):
    with pytest.raises(DatasetError, match="no CIFAR-10"):
        data.read_cifar10_bin(tmp_path)
    (tmp_path / "data_batch_1.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(DatasetError, match="multiple"):
        data.read_cifar10_bin(tmp_path)
    (tmp_path / "data_batch_1.bin").write_bytes(bytes([42]) + b"\x00" * 3072)
    with pytest.raises(DatasetError, match="out of range"):
        data.read_cifar10_bin(tmp_path)
    with pytest.raises(DatasetError):
        data.read_cifar10_bin(tmp_path, "val")
    with pytest.raises(DatasetError, match="unknown task"):
        data.load_task("imagenet")


def test_digits():
    (x, y), (xt, yt) = data.digits()
    assert x.shape[1:] == (3, 32, 32) and len(x) + len(xt) == 1797
    assert set(y.tolist()) == set(range(10)) and abs(float(x.mean())) < 1e-3


def test_shapes_deterministic_and_balanced():
    (x, y), (xt, yt) = data.shapes(n_train=200, n_test=50, seed=1)
    (x2, y2), _ = data.shapes(n_train=200, n_test=50, seed=1)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert x.shape == (200, 3, 32, 32) and xt.shape == (50, 3, 32, 32)
    assert len(set(y.tolist())) == 10


def test_batches():
    x, y = torch.arange(10.0).reshape(10, 1, 1, 1).expand(10, 3, 4, 4).contiguous(), torch.arange(10)
    b = data.Batches(x, y, batch=4, seed=0, shift=1, flip=True)
    assert len(b) == 3
    seen = torch.cat([yb for _, yb in b])
    assert sorted(seen.tolist()) == list(range(10))
    for xb, yb in data.Batches(x, y, batch=4, shuffle=False):
        assert xb.shape[1:] == (3, 4, 4)
    with pytest.raises(DatasetError):
        data.Batches(x, y[:3])
