"""int8 (issue 21.1-2): the arithmetic (qarith), data-free quantization invariants, the integer reference against
the fake-quant model, the plan round trip with its int8 fields, config / CLI parsing, the compile refusal."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from spattern import qarith
from spattern.errors import ConfigError, PlanError
from spattern.models import build
from spattern.pruning import LayerRule, PruneConfig, load_pruned, prune, save_pruned
from spattern.pruning.qgraph import build_graph
from spattern.pruning.qreference import IntegerReference
from spattern.pruning.quantize import FakeQuantModel, calibrate, quant_plan
from spattern.qplan import QUANT_FILE

torch.set_num_threads(1)
FAST = dict(num_samples=32, synth_steps=8, positions=2048, admm_iters=6, distill_steps=5, quantize="int8",
            quantize_distill_steps=5)


pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def int8_vgg():
    model = build("vgg_small", num_classes=10, image_size=32, width=0.25, seed=0)
    return prune(model, torch.randn(1, 3, 32, 32), PruneConfig(default=LayerRule(connectivity=0.5), **FAST),
                 progress=False)


def _steps_apart(fq: FakeQuantModel, ref: IntegerReference, x: torch.Tensor) -> torch.Tensor:
    """|fake-quant output - reference output| in output steps."""
    grid = ref.output_grids()[0]
    with torch.no_grad():
        q_fq = torch.clamp(torch.round(fq(x) / grid.scale) + grid.zero_point, 0, 255)
    return (q_fq - ref.forward_q(x)[0].to(torch.float32)).abs()


def _worst_node_steps(fq: FakeQuantModel, ref: IntegerReference, x: torch.Tensor) -> float:
    """The largest |fake-quant - reference| in output steps over every node, each node fed the reference's own
    inputs (so a rounding tie upstream is not counted again downstream)."""
    env: dict = {}
    plan_nodes = iter(ref.quant.nodes)
    worst = 0.0
    with torch.no_grad():
        for n in ref.graph.nodes:
            if n.op == "meta":
                env[n.name] = fq.step(n, env, x)
                continue
            q = next(plan_nodes)
            env[n.name] = ref.step(n, q, env, x)
            floats = {i: qarith.dequantize(env[i], ref.quant.node(i).out) for i in q.inputs}
            v = fq.step(fq.graph.node(n.name), {**env, **floats}, x)
            worst = max(worst, float((torch.round(v / q.out.scale) + q.out.zero_point - env[n.name].float()).abs().max()))
    return worst


def test_requantize_rounds_half_even_and_saturates():
    acc = torch.tensor([[5, 7, -3, 1000, -1000]], dtype=torch.int32)
    out = qarith.requantize(acc, torch.tensor(0.5), zero_point=10, channel_dim=0)
    assert out.tolist() == [[12, 14, 8, 255, 0]]  # 2.5 -> 2, 3.5 -> 4, -1.5 -> -2: ties to even
    per_channel = qarith.requantize(torch.tensor([[[4]], [[4]]], dtype=torch.int32).reshape(1, 2, 1, 1),
                                    torch.tensor([1.0, 0.25]), zero_point=0)
    assert per_channel.flatten().tolist() == [4, 1]
    assert qarith.requantize(torch.tensor([-5], dtype=torch.int32), torch.tensor(1.0), 3, lo=3).tolist() == [3]


def test_add_requantize_is_one_rounding_of_the_real_sum():
    gen = torch.Generator().manual_seed(0)
    a, b, out = qarith.ActQuant(0.0213, 7), qarith.ActQuant(0.0517, 130), qarith.ActQuant(0.0611, 90)  # no exact ties
    p = qarith.add_quant(a.scale, b.scale, out.scale)
    assert max(p.multiplier_a, p.multiplier_b) < qarith.ADD_MULTIPLIER_LIMIT
    qa, qb = (torch.randint(0, 256, (4096,), generator=gen, dtype=torch.uint8) for _ in range(2))
    got = qarith.add_requantize(qa, a, qb, b, p, out).to(torch.int32)
    real = (qa.double() - a.zero_point) * a.scale + (qb.double() - b.zero_point) * b.scale
    want = torch.clamp(torch.floor(real / out.scale + 0.5) + out.zero_point, 0, 255)
    assert (got - want).abs().max() <= 1 and (got == want).float().mean() > 0.99


def test_grids_and_weights():
    assert qarith.act_quant(0.0, 2.55) == qarith.ActQuant(qarith.act_quant(0.0, 2.55).scale, 0)
    asym = qarith.act_quant(-1.0, 3.0)
    assert 0 < asym.zero_point < 255 and abs(asym.scale - 4.0 / 255) < 1e-7
    w = torch.tensor([[0.0, 0.5, -1.0], [0.0, 0.0, 0.0]])
    s = qarith.weight_scales(w)
    q = qarith.quantize_weight(w, s)
    assert q.dtype == torch.int8 and q.tolist() == [[0, 64, -127], [0, 0, 0]] and float(s[1]) == 1.0


def test_quantization_invariants(int8_vgg):
    res = int8_vgg
    qp = res.plan.quant
    assert qp is not None and not qp.fallbacks()
    layers = {lp.name: lp for lp in res.plan.layers}
    modules = dict(res.model.named_modules())
    for n in qp.nodes:
        assert 0 <= n.out.zero_point <= 255 and n.out.scale > 0
        if n.op not in ("conv", "linear"):
            continue
        w = qp.weights(n.name)
        f = w["weight"].shape[0]
        assert w["weight"].dtype == torch.int8 and w["weight_scale"].shape == (f,)
        assert int(w["weight"].abs().max()) <= 127
        live = w["weight"].reshape(f, -1).abs().amax(1)
        assert ((live == 127) | (live == 0)).all()  # symmetric: each channel's largest weight is +-127
        module = n.module
        if module in layers:  # pattern layers: a pruned zero stays zero, in the int8 weights and in the model
            mask = torch.from_numpy(layers[module].mask())
            assert not (w["weight"] != 0)[~mask].any()
            assert not (modules[module].weight.detach() != 0)[~mask].any()
        conv_relu = n.clamp[0] == n.out.zero_point
        if n.op == "conv":
            assert conv_relu and n.out.zero_point == 0  # vgg: every conv is followed by a ReLU
    assert qp.nodes[0].op == "input" and qp.nodes[0].out.zero_point > 0  # normalised images: asymmetric
    last = qp.node(qp.outputs[0])
    assert last.op == "linear" and last.out.zero_point > 0 and last.clamp == (0, 255)  # logits: asymmetric
    assert "quantization" in res.report and res.report["quantization"]["fallbacks"] == []
    res.plan.check_state_dict(res.model.state_dict())


def test_reference_matches_fake_quant_within_one_step(int8_vgg):
    res = int8_vgg
    ref = IntegerReference(res.model, res.plan.quant)
    fq = FakeQuantModel(build_graph(res.model, torch.zeros(1, 3, 32, 32)), {n.name: n.out for n in res.plan.quant.nodes})
    x = torch.randn(16, 3, 32, 32)
    assert _worst_node_steps(fq, ref, x) <= 1
    assert float(_steps_apart(fq, ref, x).max()) <= 1
    assert ref.fallback_calls == 0


class _Mixed(nn.Module):
    """conv + ReLU, a conv without ReLU into a residual add, a concat of grids that differ, an op int8 does not
    cover (SiLU: falls back), average pool, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.c = nn.Conv2d(8, 4, 1)
        self.act = nn.SiLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.a(x))
        z = torch.relu(self.bn(self.b(y)) + y)
        w = torch.cat([z, self.act(self.c(z))], 1)
        return self.fc(torch.flatten(self.pool(w), 1))


def test_reference_ops_and_fallbacks_match_fake_quant():
    torch.manual_seed(0)
    model = _Mixed().eval()
    with torch.no_grad():
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.running_mean.uniform_(-0.2, 0.2)
    images = torch.randn(32, 3, 12, 12)
    graph = build_graph(model, images[:1])
    acts = calibrate(graph, images)
    qp = quant_plan(graph, acts, (1, 3, 12, 12))
    ops = [n.op for n in qp.nodes]
    assert ops.count("conv") == 3 and {"add", "cat", "avgpool", "view", "linear"} <= set(ops)
    assert [n.attrs["what"] for n in qp.fallbacks()] == ["SiLU"]
    assert qp.node("b").clamp == (0, 255) and qp.node("add").out.zero_point == 0  # ReLU fused into the add
    assert qp.node("cat").attrs["scales"][0] != qp.node("cat").attrs["scales"][1]
    ref = IntegerReference(model, qp)
    fq = FakeQuantModel(graph, acts)
    assert _worst_node_steps(fq, ref, images) <= 1
    apart = _steps_apart(fq, ref, images)  # end to end, a tie upstream may move the logits by more
    assert float((apart == 0).float().mean()) > 0.9 and float(apart.max()) <= 3
    assert ref.fallback_calls == 2  # the SiLU, once in each of the two runs above
    out = ref(images)
    with torch.no_grad():
        assert float((out - model(images)).abs().max()) < 0.1 * float(model(images).abs().max())


def test_plan_round_trip_with_int8_fields(int8_vgg, tmp_path):
    res = int8_vgg
    folder = save_pruned(res, tmp_path / "out", model_info={"zoo": "vgg_small", "num_classes": 10,
                                                            "image_size": 32, "width": 0.25})
    assert (folder / QUANT_FILE).is_file()
    back = load_pruned(folder)
    assert json.dumps(back.plan.to_json()) == json.dumps(res.plan.to_json())
    assert back.plan.quant.arrays.keys() == res.plan.quant.arrays.keys()
    assert all(torch.equal(back.plan.quant.arrays[k], v) for k, v in res.plan.quant.arrays.items())
    x = torch.randn(4, 3, 32, 32)
    a = IntegerReference(res.model, res.plan.quant).forward_q(x)[0]
    assert torch.equal(IntegerReference(back.model, back.plan.quant).forward_q(x)[0], a)
    (folder / QUANT_FILE).unlink()
    with pytest.raises(PlanError, match="quant.safetensors"):
        load_pruned(folder)


def test_plan_rejects_a_bad_int8_entry(int8_vgg):
    from spattern.qplan import QuantPlan

    d = json.loads(json.dumps(int8_vgg.plan.quant.to_json()))
    arrays = dict(int8_vgg.plan.quant.arrays)
    bad = json.loads(json.dumps(d))
    bad["nodes"][1]["zero_point"] = 300
    with pytest.raises(PlanError, match="zero point 300"):
        QuantPlan.from_json(bad, arrays)
    conv = d["nodes"][1]["name"]
    arrays[f"{conv}.bias"] = arrays[f"{conv}.bias"].to(torch.float32)
    with pytest.raises(PlanError, match="bias is torch.float32"):
        QuantPlan.from_json(d, arrays)


def test_config_parsing_and_compile_refusal(int8_vgg, tmp_path):
    assert PruneConfig.from_dict({"quantize": "int8"}).quantize == "int8"
    assert PruneConfig().quantize is None
    with pytest.raises(ConfigError, match="quantize must be null"):
        PruneConfig.from_dict({"quantize": "int4"})
    with pytest.raises(ConfigError, match="quantize_distill_steps"):
        PruneConfig(quantize_distill_steps=-1)
    (tmp_path / "q.yaml").write_text("quantize: int8\nquantize_distill_steps: 3\n")
    assert PruneConfig.from_yaml(tmp_path / "q.yaml").quantize_distill_steps == 3
    from spattern import api

    with pytest.raises(ConfigError, match="cannot compile int8"):
        api.compile(int8_vgg.model, torch.zeros(1, 3, 32, 32), plan=int8_vgg.plan)


def test_cli_quantize_option(int8_vgg, tmp_path):
    folder = save_pruned(int8_vgg, tmp_path / "q", model_info={"zoo": "vgg_small", "num_classes": 10,
                                                               "image_size": 32, "width": 0.25})
    r = subprocess.run([sys.executable, "-m", "spattern", "compile", str(folder), "-o", str(tmp_path / "m.vmfb")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "cannot compile int8" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-m", "spattern", "prune", "--zoo", "vgg_small", "--num-classes", "10",
                        "--input-shape", "1,3,32,32", "--quantize", "int4", "-o", str(tmp_path / "bad")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "quantize must be null (float32) or one of int8" in r.stderr, r.stderr
