"""Datasets for measuring pruning accuracy (never used by pruning itself, which is data-free).

- digits: scikit-learn's bundled handwritten digits (1797 8x8 images, no download), upsampled to 32x32, grey
  replicated to 3 channels; a fixed stratified 70/30 split.
- shapes: a generated 10-class 32x32 RGB task (shapes of random size, rotation and low contrast on noisy,
  cluttered backgrounds) hard enough that a small CNN gets roughly 85-90%.
- cifar10: the standard CIFAR-10 *binary* distribution (data_batch_1.bin .. data_batch_5.bin, test_batch.bin:
  records of 1 label byte + 3072 pixel bytes). Plain bytes: no pickle is ever loaded.

All loaders return float32 tensors [N, 3, 32, 32], normalised with the training split's per-channel statistics,
and int64 labels.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DatasetError

Split = tuple[torch.Tensor, torch.Tensor]
CIFAR_RECORD = 1 + 3 * 32 * 32
CIFAR_TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
CIFAR_TEST_FILES = ["test_batch.bin"]
TASKS = ("digits", "shapes")


def _normalise(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = train.mean(dim=(0, 2, 3), keepdim=True)
    std = train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return (train - mean) / std, (test - mean) / std


def digits(seed: int = 0) -> tuple[Split, Split]:
    """((x_train, y_train), (x_test, y_test)) from scikit-learn's bundled digits, 32x32x3."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    y = torch.from_numpy(d.target.astype(np.int64))
    idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=0.3, random_state=seed, stratify=d.target)
    xtr, xte = _normalise(x[idx_tr], x[idx_te])
    return (xtr, y[idx_tr]), (xte, y[idx_te])


SHAPE_NAMES = ("circle", "square", "diamond", "triangle_up", "triangle_down", "plus", "cross", "ring",
               "h_stripes", "v_stripes")


def _shape_masks(labels: np.ndarray, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """[N, size, size] float masks of each label's shape at a random place, scale and small rotation."""
    n = len(labels)
    g = np.arange(size, dtype=np.float32) + 0.5
    yy, xx = np.meshgrid(g, g, indexing="ij")
    r = rng.uniform(5.0, 11.0, n).astype(np.float32)[:, None, None]
    cx = rng.uniform(11, size - 11, n).astype(np.float32)[:, None, None]
    cy = rng.uniform(11, size - 11, n).astype(np.float32)[:, None, None]
    th = rng.uniform(-0.35, 0.35, n).astype(np.float32)[:, None, None]
    u = ((xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)) / r
    v = (-(xx - cx) * np.sin(th) + (yy - cy) * np.cos(th)) / r
    rad = np.sqrt(u * u + v * v)
    ud, vd = (u + v) / math.sqrt(2), (u - v) / math.sqrt(2)
    tri = (v <= 0.7) & (np.abs(u) <= (v + 0.9) * 0.55)
    tri_dn = (-v <= 0.7) & (np.abs(u) <= (-v + 0.9) * 0.55)
    box = np.maximum(np.abs(u), np.abs(v))
    shapes = [
        rad <= 1.0,
        box <= 0.8,
        np.abs(u) + np.abs(v) <= 1.0,
        tri,
        tri_dn,
        ((np.abs(u) <= 0.25) & (np.abs(v) <= 0.9)) | ((np.abs(v) <= 0.25) & (np.abs(u) <= 0.9)),
        ((np.abs(ud) <= 0.25) & (np.abs(vd) <= 0.9)) | ((np.abs(vd) <= 0.25) & (np.abs(ud) <= 0.9)),
        (rad <= 1.0) & (rad >= 0.55),
        (box <= 0.9) & (np.sin(v * 3.3 * math.pi) > 0),
        (box <= 0.9) & (np.sin(u * 3.3 * math.pi) > 0),
    ]
    stack = np.stack(shapes, 1)  # [N, 10, H, W]
    return stack[np.arange(n), labels].astype(np.float32)


def _shape_images(n: int, rng: np.random.Generator, noise: float = 0.12, contrast: tuple[float, float] = (0.25, 0.6)
                  ) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 10, n)
    m = _shape_masks(labels, rng)[:, None]
    bg = rng.uniform(0.2, 0.8, (n, 3, 1, 1)).astype(np.float32)
    direction = rng.normal(size=(n, 3, 1, 1)).astype(np.float32)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True) + 1e-6
    fg = bg + direction * rng.uniform(*contrast, (n, 1, 1, 1)).astype(np.float32)
    img = bg * (1 - m) + fg * m
    # clutter: two translucent rectangles of random colour that may occlude part of the shape
    g = np.arange(32)
    for _ in range(2):
        x0, y0 = rng.integers(0, 28, n), rng.integers(0, 28, n)
        w, h = rng.integers(3, 8, n), rng.integers(3, 8, n)
        rect = ((g[None, :, None] >= y0[:, None, None]) & (g[None, :, None] < (y0 + h)[:, None, None])
                & (g[None, None, :] >= x0[:, None, None]) & (g[None, None, :] < (x0 + w)[:, None, None]))
        col = rng.uniform(0, 1, (n, 3, 1, 1)).astype(np.float32)
        a = rect[:, None].astype(np.float32) * 0.3
        img = img * (1 - a) + col * a
    img = img + rng.normal(0, noise, img.shape).astype(np.float32)
    return img.astype(np.float32), labels.astype(np.int64)


def shapes(n_train: int = 10000, n_test: int = 2000, seed: int = 0) -> tuple[Split, Split]:
    """((x_train, y_train), (x_test, y_test)) of the generated shapes task (deterministic for a seed)."""
    rng = np.random.default_rng(1000 + seed)
    xtr, ytr = _shape_images(n_train, rng)
    xte, yte = _shape_images(n_test, rng)
    a, b = _normalise(torch.from_numpy(xtr), torch.from_numpy(xte))
    return (a, torch.from_numpy(ytr)), (b, torch.from_numpy(yte))


def read_cifar10_bin(folder: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [N, 3, 32, 32], int64 [N]) from a CIFAR-10 binary folder (the files may sit in
    `cifar-10-batches-bin/` inside it). DatasetError if files are missing or malformed."""
    if split not in ("train", "test"):
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(folder)
    if (folder / "cifar-10-batches-bin").is_dir():
        folder = folder / "cifar-10-batches-bin"
    names = CIFAR_TRAIN_FILES if split == "train" else CIFAR_TEST_FILES
    files = [folder / n for n in names]
    present = [f for f in files if f.is_file()]
    if not present:
        raise DatasetError(f"no CIFAR-10 binary files ({', '.join(names)}) in {folder}; download the binary "
                           "version (cifar-10-binary.tar.gz) and extract it there")
    xs, ys = [], []
    for f in present:
        raw = np.frombuffer(f.read_bytes(), dtype=np.uint8)
        if raw.size == 0 or raw.size % CIFAR_RECORD:
            raise DatasetError(f"{f} is not a CIFAR-10 binary batch: its size {raw.size} is not a multiple of "
                               f"{CIFAR_RECORD} bytes (1 label + 3072 pixels)")
        rec = raw.reshape(-1, CIFAR_RECORD)
        labels = rec[:, 0].astype(np.int64)
        if labels.max() > 9:
            raise DatasetError(f"{f}: label {int(labels.max())} is out of range 0..9; is this CIFAR-100?")
        xs.append(rec[:, 1:].reshape(-1, 3, 32, 32))
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


def cifar10(folder: str | Path) -> tuple[Split, Split]:
    """Normalised ((x_train, y_train), (x_test, y_test)) from a CIFAR-10 binary folder."""
    xtr, ytr = read_cifar10_bin(folder, "train")
    xte, yte = read_cifar10_bin(folder, "test")
    a, b = _normalise(torch.from_numpy(xtr.astype(np.float32) / 255), torch.from_numpy(xte.astype(np.float32) / 255))
    return (a, torch.from_numpy(ytr)), (b, torch.from_numpy(yte))


def load_task(name: str, seed: int = 0) -> tuple[Split, Split]:
    """'digits', 'shapes' or 'cifar10:<folder>'."""
    if name == "digits":
        return digits(seed)
    if name == "shapes":
        return shapes(seed=seed)
    if name.startswith("cifar10:"):
        return cifar10(name.split(":", 1)[1])
    raise DatasetError(f"unknown task {name!r}; known: digits, shapes, cifar10:<folder>")


class Batches:
    """A re-iterable, seeded mini-batch loader over in-memory tensors with optional shift/flip augmentation
    (lighter than torch's DataLoader for data that already sits in memory)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch: int = 128, shuffle: bool = True, seed: int = 0,
                 shift: int = 0, flip: bool = False):
        if len(x) != len(y):
            raise DatasetError(f"{len(x)} inputs but {len(y)} labels")
        self.x, self.y, self.batch, self.shuffle, self.shift, self.flip = x, y, batch, shuffle, shift, flip
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.x)
        order = torch.randperm(n, generator=self.gen) if self.shuffle else torch.arange(n)
        for a in range(0, n, self.batch):
            idx = order[a:a + self.batch]
            x = self.x[idx]
            if self.shift:
                s = self.shift
                xp = F.pad(x, (s, s, s, s))
                dy, dx = (int(v) for v in torch.randint(0, 2 * s + 1, (2,), generator=self.gen))
                x = xp[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]]
            if self.flip and bool(torch.rand((), generator=self.gen) < 0.5):
                x = torch.flip(x, dims=(3,))
            yield x, self.y[idx]
