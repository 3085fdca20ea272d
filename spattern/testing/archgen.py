"""A seeded generator of random but valid CNNs, for the corpus tests and `bench/fuzz.py`.

`generate(seed)` composes a stem, two to four blocks and a head into an `nn.Module` in eval mode, at a 24-64 px
input (odd and non-square sizes included, batch 1 or 2, 1 or 3 input channels), with random BatchNorm running
statistics and affines (as `spattern.models.build` does, so folding them matters). The same seed gives the same
architecture, weights and input on every machine.

Why it exists: every fusion rule of the compiler was written against the zoo's shapes; the bugs live where a
pattern conv (3x3, groups 1) meets an op the zoo never puts next to it. So almost every block holds 3x3 groups-1
convs beside the other op it exercises: residual adds (identity, 1x1 skip at stride 1 and 2, add-then-act,
act-then-add), concats (Inception, DenseNet, SqueezeNet fire), a value with two consumers and a value feeding two
adds, grouped / depthwise / dilated / 1x3 / 3x1 / 5x5 / 7x7 convs, stride 2 on odd sizes, convs without bias or
without BatchNorm and BatchNorm on either side of the activation, six activations and squeeze-excite gating, max /
avg / adaptive pools, nearest or bilinear upsample + concat, and flatten + Linear or global-pool heads.

Some blocks create their modules in another order than forward calls them (as hand-written models often do), so
module order is not execution order; see `spattern.testing.random_plan_for(..., example_input=...)`.

Each model carries `blocks`, a list of short tags (e.g. ``res-1x1s2-actadd``), for test ids and the fuzz table.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..models import randomize_batchnorm

ACTIVATIONS = ("relu", "relu6", "leaky", "silu", "gelu", "hswish")
WIDTHS = (8, 8, 12, 16, 16, 16, 24, 24, 32, 7, 13)  # narrow, with odd widths now and then


@dataclass
class GeneratedModel:
    """One generated CNN: the module (eval mode), the input shape its forward expects and the blocks' tags."""

    seed: int
    model: nn.Module
    input_shape: tuple[int, int, int, int]
    blocks: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        b, c, h, w = self.input_shape
        return f"in{b}x{c}x{h}x{w} " + " ".join(self.blocks)

    @property
    def test_id(self) -> str:
        return f"g{self.seed}-" + "-".join(t.split("(")[0] for t in self.blocks[1:-1])

    def example_input(self) -> torch.Tensor:
        """The seeded input batch (the same for every caller)."""
        return torch.randn(*self.input_shape, generator=torch.Generator().manual_seed(10_000 + self.seed))


def activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "relu6": nn.ReLU6, "leaky": lambda: nn.LeakyReLU(0.1), "silu": nn.SiLU,
            "gelu": nn.GELU, "hswish": nn.Hardswish}[name]()


def conv(cin: int, cout: int, kernel: tuple[int, int] = (3, 3), stride: int = 1, groups: int = 1,
         dilation: int = 1, bias: bool = True) -> nn.Conv2d:
    """A conv whose padding keeps the size at stride 1 ("same"), for any odd kernel and dilation."""
    pad = (dilation * (kernel[0] - 1) // 2, dilation * (kernel[1] - 1) // 2)
    return nn.Conv2d(cin, cout, kernel, stride, pad, dilation=dilation, groups=groups, bias=bias)


def out_size(size: int, stride: int) -> int:
    """Output size of a "same"-padded conv or a 3x3/s2/p1 pool (odd kernels)."""
    return (size - 1) // stride + 1


class Residual(nn.Module):
    """body(x) + skip(x) (or skip(x) + body(x) with `skip_first`): skip is identity (None) or a conv; `pre` acts on
    the body before the add (act-then-add), `post` after it (add-then-act). The skip is created before the body:
    module order is not execution order."""

    def __init__(self, body: nn.Module, skip: nn.Module | None, pre: nn.Module | None, post: nn.Module | None,
                 skip_first: bool = False):
        super().__init__()
        self.skip = skip if skip is not None else nn.Identity()
        self.body = body
        self.pre = pre if pre is not None else nn.Identity()
        self.post = post if post is not None else nn.Identity()
        self.skip_first = skip_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.skip_first:
            s = self.skip(x)
            return self.post(s + self.pre(self.body(x)))
        return self.post(self.pre(self.body(x)) + self.skip(x))


class Concat(nn.Module):
    """Channel concat of branches over one input (Inception); with `keep_input`, the input joins (DenseNet)."""

    def __init__(self, branches: list[nn.Module], keep_input: bool = False, post: nn.Module | None = None):
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.keep_input = keep_input
        self.post = post if post is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [x] if self.keep_input else []
        return self.post(torch.cat(outs + [b(x) for b in self.branches], dim=1))


class Fire(nn.Module):
    """SqueezeNet fire: squeeze 1x1, then expand 1x1 and expand 3x3 over the same value, concatenated."""

    def __init__(self, squeeze: nn.Module, expand1: nn.Module, expand3: nn.Module):
        super().__init__()
        self.squeeze, self.expand1, self.expand3 = squeeze, expand1, expand3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return torch.cat([self.expand1(s), self.expand3(s)], dim=1)


class Fork(nn.Module):
    """y = stem(x) has two consumers, joined by an add or a concat."""

    def __init__(self, stem: nn.Module, a: nn.Module, b: nn.Module, join: str):
        super().__init__()
        self.b, self.a, self.stem = b, a, stem  # created in reverse of their execution order
        self.join = join

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        if self.join == "add":
            return self.a(y) + self.b(y)
        return torch.cat([self.a(y), self.b(y)], dim=1)


class TwoAdds(nn.Module):
    """One value y feeding two adds: z = act(f(y) + y); out = g(z) + y."""

    def __init__(self, stem: nn.Module, f: nn.Module, g: nn.Module, act: nn.Module):
        super().__init__()
        self.g, self.stem, self.f = g, stem, f  # g is called last but created first
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        z = self.act(self.f(y) + y)
        return self.g(z) + y


class SqueezeExcite(nn.Module):
    """x * gate(fc2(act(fc1(mean over H, W of x)))) with 1x1 convs as the FC layers."""

    def __init__(self, c: int, hidden: int, act: nn.Module, gate: nn.Module):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.act, self.fc2, self.gate = nn.Conv2d(c, hidden, 1), act, nn.Conv2d(hidden, c, 1), gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class UNetStage(nn.Module):
    """enc -> down -> mid -> upsample back to enc's size -> concat with enc -> dec."""

    def __init__(self, enc: nn.Module, down: nn.Module, mid: nn.Module, dec: nn.Module, mode: str):
        super().__init__()
        self.dec, self.mid, self.down, self.enc = dec, mid, down, enc  # decoder first, as U-Nets are often written
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.enc(x)
        m = self.mid(self.down(e))
        kw = {"align_corners": False} if self.mode == "bilinear" else {}
        u = F.interpolate(m, size=e.shape[-2:], mode=self.mode, **kw)
        return self.dec(torch.cat([u, e], dim=1))


class Net(nn.Module):
    """stem -> blocks -> head, as the generator composed them."""

    def __init__(self, stem: nn.Module, blocks: list[nn.Module], head: nn.Module):
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*blocks)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


@dataclass
class _Shape:
    c: int
    h: int
    w: int


class _Builder:
    """Draws blocks with one `random.Random`; every block returns (module, tag) and updates `shape`."""

    def __init__(self, rng: random.Random, shape: _Shape):
        self.rng = rng
        self.shape = shape

    # --- pieces ------------------------------------------------------------------------------------------------
    def act_name(self) -> str:
        return self.rng.choice(ACTIVATIONS + ("relu",) * 4)  # half ReLU: the activation the kernels fuse

    def width(self) -> int:
        return self.rng.choice(WIDTHS)

    def chain(self, cin: int, cout: int, kernel: tuple[int, int] = (3, 3), stride: int = 1, groups: int = 1,
              dilation: int = 1, act: str | None = "draw") -> tuple[nn.Sequential, str]:
        """conv [BN] [act], with or without bias, BN before or after the activation, or no BN."""
        r = self.rng
        has_bn = r.random() < 0.75
        bias = (not has_bn) or r.random() < 0.3
        name = self.act_name() if act == "draw" else act
        layers: list[nn.Module] = [conv(cin, cout, kernel, stride, groups, dilation, bias)]
        bn_after_act = has_bn and name is not None and r.random() < 0.2
        if has_bn and not bn_after_act:
            layers.append(nn.BatchNorm2d(cout))
        if name is not None:
            layers.append(activation(name))
        if bn_after_act:
            layers.append(nn.BatchNorm2d(cout))
        tag = name or "lin"
        tag += "" if has_bn else "-nobn"
        tag += "-actbn" if bn_after_act else ""
        tag += "-nobias" if not bias else ""
        return nn.Sequential(*layers), tag

    def can_halve(self) -> bool:
        return min(self.shape.h, self.shape.w) >= 8

    def strided(self) -> int:
        return 2 if self.can_halve() and self.rng.random() < 0.35 else 1

    def _halve(self, stride: int) -> str:
        odd = self.shape.h % 2 or self.shape.w % 2
        self.shape.h, self.shape.w = out_size(self.shape.h, stride), out_size(self.shape.w, stride)
        return "s2odd" if stride == 2 and odd else ("s2" if stride == 2 else "")

    # --- blocks ------------------------------------------------------------------------------------------------
    def conv_chain(self) -> tuple[nn.Module, str]:
        """One to three 3x3 conv-BN-act layers, the first maybe strided."""
        s, n = self.shape, self.rng.randint(1, 3)
        layers, tags = [], []
        for i in range(n):
            cout, stride = self.width(), self.strided() if i == 0 else 1
            m, t = self.chain(s.c, cout, stride=stride)
            tags.append(t + self._halve(stride))
            layers.append(m)
            s.c = cout
        return nn.Sequential(*layers), f"cbr{n}({','.join(tags)})"

    def odd_kernel_conv(self) -> tuple[nn.Module, str]:
        """A 1x3, 3x1, 5x5 or 7x7 conv between two 3x3 convs."""
        s = self.shape
        kernel = self.rng.choice([(1, 3), (3, 1), (5, 5), (7, 7)])
        c1, c2 = self.width(), self.width()
        a, _ = self.chain(s.c, c1)
        b, _ = self.chain(c1, c2, kernel=kernel)
        c, _ = self.chain(c2, c2)
        s.c = c2
        return nn.Sequential(a, b, c), f"k{kernel[0]}x{kernel[1]}"

    def grouped(self) -> tuple[nn.Module, str]:
        """A grouped 3x3 conv (groups 2 or 4) or a depthwise 3x3 + pointwise pair, after a 3x3 conv."""
        s = self.shape
        depthwise = self.rng.random() < 0.5
        groups = 0 if depthwise else self.rng.choice([2, 4])
        c1 = self.rng.choice([8, 16, 24, 32]) if not depthwise else self.width()
        a, _ = self.chain(s.c, c1)
        stride = self.strided()
        if depthwise:
            b, _ = self.chain(c1, c1, groups=c1, stride=stride)
            c2 = self.width()
            p, _ = self.chain(c1, c2, kernel=(1, 1), act=self.rng.choice([None, "relu6"]))
            s.c = c2
            return nn.Sequential(a, b, p), "dw" + self._halve(stride)
        b, _ = self.chain(c1, c1, groups=groups, stride=stride)
        s.c = c1
        return nn.Sequential(a, b), f"g{groups}" + self._halve(stride)

    def dilated(self) -> tuple[nn.Module, str]:
        s = self.shape
        c1 = self.width()
        a, _ = self.chain(s.c, c1, dilation=2)
        b, _ = self.chain(c1, c1)
        s.c = c1
        return nn.Sequential(a, b), "dil2"

    def residual(self) -> tuple[nn.Module, str]:
        """conv3-BN-act-conv3-BN + skip: identity, or a 1x1 conv (stride 1 or 2); act after or before the add."""
        r, s = self.rng, self.shape
        stride = self.strided()
        cout = s.c if stride == 1 and r.random() < 0.5 else self.width()
        a, _ = self.chain(s.c, cout, stride=stride)
        b, _ = self.chain(cout, cout, act=None)
        skip = None
        if stride != 1 or cout != s.c:
            skip_bn = r.random() < 0.6
            skip = nn.Sequential(conv(s.c, cout, (1, 1), stride, bias=not skip_bn),
                                 *([nn.BatchNorm2d(cout)] if skip_bn else []))
        act = self.act_name()
        order = r.choice(["addact", "addact", "actadd", "add"])
        pre, post = {"addact": (None, activation(act)), "actadd": (activation(act), None), "add": (None, None)}[order]
        skip_first = r.random() < 0.4
        kind = "id" if skip is None else f"1x1s{stride}"
        self._halve(stride)
        s.c = cout
        tag = f"res-{kind}-{order}" + ("-skipfirst" if skip_first else "") + (f"({act})" if order != "add" else "")
        return Residual(nn.Sequential(a, b), skip, pre, post, skip_first), tag

    def inception(self) -> tuple[nn.Module, str]:
        """Branches 1x1 / 1x1->3x3 / 1x3->3x1 or 5x5 / 3x3 max pool->1x1 over one input, concatenated."""
        r, s = self.rng, self.shape
        cs = [r.choice([4, 8, 12, 16]) for _ in range(4)]
        b1, _ = self.chain(s.c, cs[0], kernel=(1, 1), act="relu")
        r1, _ = self.chain(s.c, 8, kernel=(1, 1), act="relu")
        r2, _ = self.chain(8, cs[1])
        if r.random() < 0.5:
            f1, _ = self.chain(s.c, 8, kernel=(1, 3))
            f2, _ = self.chain(8, cs[2], kernel=(3, 1))
            b3, third = nn.Sequential(f1, f2), "1x3-3x1"
        else:
            b3, _ = self.chain(s.c, cs[2], kernel=(5, 5))
            third = "5x5"
        p, _ = self.chain(s.c, cs[3], kernel=(1, 1), act="relu")
        b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), p)
        s.c = sum(cs)
        return Concat([b1, nn.Sequential(r1, r2), b3, b4]), f"incep({third})"

    def densenet(self) -> tuple[nn.Module, str]:
        """Two DenseNet layers (BN-ReLU-conv3 grown onto the input by concat)."""
        r, s = self.rng, self.shape
        growth = r.choice([4, 8, 12])
        layers = []
        for _ in range(2):
            body = nn.Sequential(nn.BatchNorm2d(s.c), nn.ReLU(), conv(s.c, growth, bias=False))
            layers.append(Concat([body], keep_input=True))
            s.c += growth
        return nn.Sequential(*layers), f"dense(k{growth})"

    def fire(self) -> tuple[nn.Module, str]:
        r, s = self.rng, self.shape
        sq, e1, e3 = r.choice([4, 8]), r.choice([8, 16]), r.choice([8, 16])
        squeeze = nn.Sequential(nn.Conv2d(s.c, sq, 1), nn.ReLU())
        expand1 = nn.Sequential(nn.Conv2d(sq, e1, 1), nn.ReLU())
        expand3 = nn.Sequential(conv(sq, e3), nn.ReLU())
        s.c = e1 + e3
        return Fire(squeeze, expand1, expand3), "fire"

    def fork(self) -> tuple[nn.Module, str]:
        """A 3x3 conv whose output two 3x3 convs (or a 3x3 and a 1x1) read, joined by add or concat."""
        r, s = self.rng, self.shape
        c1 = self.width()
        stem, _ = self.chain(s.c, c1)
        join = r.choice(["add", "cat"])
        c2 = self.width() if join == "cat" else c1
        c3 = self.width() if join == "cat" else c1
        a, _ = self.chain(c1, c2)
        kb = r.choice([(3, 3), (1, 1)])
        b, _ = self.chain(c1, c3, kernel=kb, act=r.choice([None, "relu"]))
        s.c = c2 + c3 if join == "cat" else c1
        return Fork(stem, a, b, join), f"fork-{join}{'-1x1' if kb == (1, 1) else ''}"

    def two_adds(self) -> tuple[nn.Module, str]:
        r, s = self.rng, self.shape
        c1 = self.width()
        stem, _ = self.chain(s.c, c1)
        f, _ = self.chain(c1, c1, act=None)
        g, _ = self.chain(c1, c1, kernel=r.choice([(3, 3), (1, 1)]), act=r.choice([None, "relu"]))
        act = self.act_name()
        s.c = c1
        return TwoAdds(stem, f, g, activation(act)), f"twoadds({act})"

    def squeeze_excite(self) -> tuple[nn.Module, str]:
        r, s = self.rng, self.shape
        c1 = self.width()
        a, _ = self.chain(s.c, c1)
        gate = r.choice(["sigmoid", "hsigmoid"])
        se = SqueezeExcite(c1, max(2, c1 // 4), activation(r.choice(["relu", "silu"])),
                           nn.Sigmoid() if gate == "sigmoid" else nn.Hardsigmoid())
        b, _ = self.chain(c1, c1)
        s.c = c1
        return nn.Sequential(a, se, b), f"se({gate})"

    def pool(self) -> tuple[nn.Module, str]:
        """A 3x3 conv, then a max / avg / adaptive pool, then a 3x3 conv."""
        r, s = self.rng, self.shape
        c1 = self.width()
        a, _ = self.chain(s.c, c1, act=r.choice(["draw", "draw", None]))
        kind = r.choice(["max2", "max3s2", "avg2", "avg3s1", "adaptive"]) if self.can_halve() else "avg3s1"
        if kind == "max2":
            p = nn.MaxPool2d(2)
            s.h, s.w = s.h // 2, s.w // 2
        elif kind == "max3s2":
            p = nn.MaxPool2d(3, 2, 1)
            s.h, s.w = out_size(s.h, 2), out_size(s.w, 2)
        elif kind == "avg2":
            p = nn.AvgPool2d(2)
            s.h, s.w = s.h // 2, s.w // 2
        elif kind == "avg3s1":
            p = nn.AvgPool2d(3, 1, 1)
        else:  # a divisor of the size, so IREE sees a plain pooling window
            s.h, s.w = s.h // 2 if s.h % 2 == 0 else s.h, s.w // 2 if s.w % 2 == 0 else s.w
            p = nn.AdaptiveAvgPool2d((s.h, s.w))
        b, _ = self.chain(c1, c1)
        s.c = c1
        return nn.Sequential(a, p, b), f"pool-{kind}"

    def unet(self) -> tuple[nn.Module, str]:
        r, s = self.rng, self.shape
        c1, c2 = self.width(), self.width()
        enc, _ = self.chain(s.c, c1)
        if r.random() < 0.5:
            down, dtag = nn.MaxPool2d(2), "max"
        else:
            down, _ = self.chain(c1, c1, stride=2)
            dtag = "s2"
        mid, _ = self.chain(c1, c2)
        dec, _ = self.chain(c1 + c2, c1)
        mode = r.choice(["nearest", "bilinear"])
        s.c = c1
        return UNetStage(enc, down, mid, dec, mode), f"unet-{dtag}-{mode}"

    BLOCKS = ("conv_chain", "conv_chain", "residual", "residual", "residual", "inception", "densenet", "fire",
              "fork", "two_adds", "grouped", "dilated", "odd_kernel_conv", "squeeze_excite", "pool", "unet")

    def block(self) -> tuple[nn.Module, str]:
        name = self.rng.choice(self.BLOCKS)
        if name == "unet" and not self.can_halve():
            name = "residual"
        return getattr(self, name)()

    def stem(self) -> tuple[nn.Module, str]:
        """The first conv: 3x3 (stride 1 or 2), sometimes a strided 5x5 or 7x7."""
        s = self.shape
        cout = self.width()
        if self.rng.random() < 0.25 and self.can_halve():
            k = self.rng.choice([5, 7])
            m, t = self.chain(s.c, cout, kernel=(k, k), stride=2)
            tag = f"stem{k}x{k}" + self._halve(2)
        else:
            stride = self.strided()
            m, t = self.chain(s.c, cout, stride=stride)
            tag = "stem3x3" + self._halve(stride)
        s.c = cout
        return m, f"{tag}({t})"

    def head(self) -> tuple[nn.Module, str]:
        """Global pool + Linear, adaptive pool + flatten + Linear (+ act + Linear), 1x1 conv + global pool, or
        no head (a dense prediction map)."""
        r, s = self.rng, self.shape
        n = r.randint(3, 10)
        kind = r.choice(["gap-fc", "gap-fc", "flat-fc", "flat-mlp", "conv-gap", "map", "flatten"])
        if kind == "flatten" and s.c * s.h * s.w > 6144:
            kind = "gap-fc"
        if kind == "flatten":  # the feature map itself into a Linear
            return nn.Sequential(nn.Flatten(), nn.Linear(s.c * s.h * s.w, n)), kind
        if kind == "gap-fc":
            return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(s.c, n)), kind
        if kind in ("flat-fc", "flat-mlp"):
            side = (min(2, s.h), min(2, s.w))
            feats = s.c * side[0] * side[1]
            pool = nn.AdaptiveAvgPool2d(side) if (s.h % side[0] == 0 and s.w % side[1] == 0) else \
                nn.AdaptiveMaxPool2d(1)
            if isinstance(pool, nn.AdaptiveMaxPool2d):
                feats, kind = s.c, kind + "-gmp"
            if kind.startswith("flat-mlp"):
                act = self.act_name()
                return nn.Sequential(pool, nn.Flatten(), nn.Linear(feats, 16), activation(act),
                                     nn.Linear(16, n)), kind
            return nn.Sequential(pool, nn.Flatten(), nn.Linear(feats, n)), kind
        if kind == "conv-gap":
            return nn.Sequential(nn.Conv2d(s.c, n, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()), kind
        return nn.Conv2d(s.c, n, 1), kind


def generate(seed: int) -> GeneratedModel:
    """The model of `seed`: deterministic architecture, weights, BatchNorm statistics and input shape."""
    rng = random.Random(seed)
    batch = rng.choice([1, 1, 1, 2])
    channels = rng.choice([3, 3, 3, 1])
    h = rng.randint(24, 64)
    w = h if rng.random() < 0.6 else rng.randint(24, 64)
    torch.manual_seed(seed)
    builder = _Builder(rng, _Shape(channels, h, w))
    stem, stem_tag = builder.stem()
    blocks, tags = [], [stem_tag]
    for _ in range(rng.randint(2, 4)):
        m, t = builder.block()
        blocks.append(m)
        tags.append(t)
    if not any(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.groups == 1 and m.dilation == (1, 1)
               for b in blocks for m in b.modules()):
        m, t = builder.conv_chain()  # every model gets at least one pattern conv
        blocks.append(m)
        tags.append(t)
    head, head_tag = builder.head()
    tags.append(head_tag)
    model = Net(stem, blocks, head)
    randomize_batchnorm(model, seed)
    return GeneratedModel(seed=seed, model=model.eval(), input_shape=(batch, channels, h, w), blocks=tags)
