"""Issue 19, item 6: every bad input a new user brings gets one clear line, through the CLI and the API.

Each case runs the real CLI (`python -m spattern`, whose `main` prints a SpatternError as one `error:` line and
exits 2) and checks that stderr is that one line, with the fact the user needs in it."""

import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import spattern
from spattern import models
from spattern.api import check_example_input
from spattern.errors import InputError, ModelLoadError, OutputPathError
from spattern.fileio import check_output_path
from spattern.modelfile import describe_state_dict_mismatch, load_model
from spattern.pruning import PruneConfig, PruneResult, save_pruned
from spattern.testing import random_plan_for

FAST = PruneConfig(num_samples=8, synth_steps=2, positions=256, admm_iters=2, distill_steps=0)


class Tiny(torch.nn.Module):
    def __init__(self, channels: int = 3):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.conv2 = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.head = torch.nn.Linear(4, 5)

    def forward(self, x):
        y = self.conv2(torch.relu(self.bn(self.conv(x))))
        return self.head(y.mean((2, 3)))


def _pruned_tiny() -> PruneResult:
    pruned, plan = random_plan_for(Tiny().eval(), filter_block=1, connectivity=0.0)
    return PruneResult(model=pruned, plan=plan)


def _cli(*args, cwd=None) -> subprocess.CompletedProcess:
    """The real CLI in a fresh process (what a user sees, torch's own logging included)."""
    return subprocess.run([sys.executable, "-m", "spattern", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


@pytest.fixture
def cli(capsys, monkeypatch):
    """The same entry point (`spattern.cli.main`, with its error handling) in this process: no torch import per
    call, so the many refusals below stay cheap."""
    from spattern.cli import main

    def run(*args) -> subprocess.CompletedProcess:
        monkeypatch.setattr(sys, "argv", ["spattern", *map(str, args)])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, captured.out, captured.err)

    return run


def _one_error_line(r: subprocess.CompletedProcess, *needles: str) -> str:
    """The run failed with exit code 2 and printed exactly one line (rich does not wrap it: soft_wrap)."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """A tiny model compiled for host and for arm64-linux, its input, and a truncated copy of the host module."""
    d = tmp_path_factory.mktemp("modules")
    model = Tiny().eval()
    x = torch.randn(1, 3, 8, 8)
    spattern.compile(model, x).save(d / "host.vmfb")
    spattern.compile(model, x, target="arm64-linux").save(d / "arm.vmfb")
    data = (d / "host.vmfb").read_bytes()
    (d / "trunc.vmfb").write_bytes(data[: len(data) // 2])
    np.save(d / "x.npy", x.numpy())
    return d


# --- modules given to `spattern run` --------------------------------------------------------------------------
def test_truncated_vmfb_is_one_line(modules):
    line = _one_error_line(_cli("run", modules / "trunc.vmfb", "--input", modules / "x.npy"),
                           "not a complete IREE module", "spattern compile")
    assert "trunc.vmfb" in line
    with pytest.raises(ModelLoadError, match="not a complete IREE module"):
        spattern.load(modules / "trunc.vmfb")


def test_module_for_another_target_names_the_target(cli, modules):
    _one_error_line(cli("run", modules / "arm.vmfb", "--input", modules / "x.npy"),
                    "compiled for arm64-linux", "--target arm64-linux")
    with pytest.raises(ModelLoadError, match="compiled for host .*--target host"):
        spattern.load(modules / "host.vmfb", target="arm64-android")
    assert spattern.load(modules / "arm.vmfb", target="arm64-android").target.name == "arm64-android"


def test_run_checks_its_output_before_running(cli, modules, tmp_path):
    _one_error_line(cli("run", modules / "host.vmfb", "--input", modules / "x.npy", "-o", tmp_path / "no" / "y.npy"),
                    "the folder", "does not exist")
    assert not (tmp_path / "no").exists()


# --- pruning --------------------------------------------------------------------------------------------------
def test_prune_refuses_non_finite_weights_by_name(cli, tmp_path):
    model = Tiny().eval()
    with torch.no_grad():
        model.conv2.weight[0, 0, 0, 0] = float("nan")
        model.bn.running_var[1] = float("inf")
    with pytest.raises(ModelLoadError, match=r"conv2.weight \(1 NaN of 144 values\).*bn.running_var \(1 inf"):
        spattern.prune(model, torch.randn(1, 3, 8, 8), config=FAST, progress=False)
    vgg = models.build("vgg_small", num_classes=10, image_size=16)
    state = vgg.state_dict()
    state["features.3.weight"][0, 0, 0, 0] = float("nan")
    save_file(state, tmp_path / "w.safetensors")
    _one_error_line(cli("prune", tmp_path / "w.safetensors", "--zoo", "vgg_small", "--num-classes", "10",
                         "--input-shape", "1,3,16,16", "-o", tmp_path / "out"),
                    "non-finite weights: features.3.weight (1 NaN")
    assert not (tmp_path / "out").exists()


def test_prune_checks_its_output_before_pruning(cli, tmp_path):
    # No --config: the default prune would take minutes; the refusal comes before any of it.
    (tmp_path / "afile").write_text("x")
    for out, needle in [(tmp_path / "missing" / "p", "the folder " + str(tmp_path / "missing") + " does not exist"),
                        (tmp_path / "afile" / "p", "is not a folder"),
                        (tmp_path / "afile", "a file of that name is in the way")]:
        _one_error_line(cli("prune", "--zoo", "vgg_small", "--num-classes", "10", "--input-shape", "1,3,16,16",
                             "-o", out), needle)
    assert not (tmp_path / "missing").exists()
    res = _pruned_tiny()
    with pytest.raises(OutputPathError, match="does not exist"):  # the API creates no parents either
        save_pruned(res, tmp_path / "missing" / "p")
    assert not (tmp_path / "missing").exists()


def test_failed_prune_save_leaves_nothing(tmp_path, monkeypatch):
    res = _pruned_tiny()

    def disk_full(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(sys.modules["spattern.pruning.prune"], "atomic_write_text", disk_full)
    with pytest.raises(OSError, match="disk full"):
        save_pruned(res, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_output_check_policy(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    assert check_output_path(tmp_path / "new.vmfb") == tmp_path / "new.vmfb"
    assert check_output_path(tmp_path / "d", folder=True) == tmp_path / "d"  # a folder is replaced whole
    assert check_output_path(tmp_path / "f") == tmp_path / "f"  # a file is replaced
    for path, folder, msg in [(tmp_path / "no" / "x", False, "does not exist"),
                              (tmp_path / "no" / "x", True, "does not exist"),
                              (tmp_path / "f" / "x", False, "is not a folder"),
                              (tmp_path / "d", False, "a folder of that name is in the way"),
                              (tmp_path / "f", True, "a file of that name is in the way")]:
        with pytest.raises(OutputPathError, match=msg):
            check_output_path(path, folder=folder)
    with pytest.raises(OutputPathError, match="ending in .png"):
        check_output_path(tmp_path / "p.jpg", suffix=".png")


# --- compile: outputs, .pt2 shapes, example inputs ------------------------------------------------------------
def test_compile_and_report_check_outputs_first(cli, tmp_path):
    _one_error_line(cli("compile", "--zoo", "vgg_small", "--num-classes", "10", "--input-shape", "1,3,16,16",
                         "-o", tmp_path / "no" / "m.vmfb"), "does not exist")
    (tmp_path / "m.vmfb").mkdir()
    _one_error_line(cli("compile", "--zoo", "vgg_small", "--num-classes", "10", "--input-shape", "1,3,16,16",
                         "-o", tmp_path / "m.vmfb"), "a folder of that name is in the way")
    _one_error_line(cli("compile", "--zoo", "vgg_small", "--num-classes", "10", "--input-shape", "1,3,16,16",
                        "-o", tmp_path / "o.vmfb", "--dump-dir", tmp_path / "no" / "ir"), "does not exist")
    _one_error_line(cli("report", "--zoo", "vgg_small", "--num-classes", "10", "--input-shape", "1,3,16,16",
                         "--plot", tmp_path / "no" / "p.png"), "does not exist")
    _one_error_line(cli("report", "--zoo", "vgg_small", "--num-classes", "10", "--input-shape", "1,3,16,16",
                        "--plot", tmp_path / "p.jpg"), "ending in .png")


def test_exported_program_shape_is_fixed(cli, tmp_path):
    model = Tiny().eval()
    x = torch.randn(1, 3, 8, 8)
    program = torch.export.export(model, (x,))
    torch.export.save(program, tmp_path / "m.pt2")
    for shape in ("1,3,16,16", "1,3,8"):
        _one_error_line(cli("compile", tmp_path / "m.pt2", "--input-shape", shape, "-o", tmp_path / "o.vmfb"),
                        "was exported at input shape 1,3,8,8", "drop --input-shape")
    assert not (tmp_path / "o.vmfb").exists()
    with pytest.raises(InputError, match="exported at input shape 1,3,8,8"):
        spattern.compile(program, torch.randn(1, 3, 16, 16))


def test_run_advice_on_a_wrong_shape_covers_exported_programs(modules):
    with pytest.raises(InputError, match=r"compile again with --input-shape 1,3,16,16; a \.pt2 .* exported again"):
        spattern.load(modules / "host.vmfb").run(np.zeros((1, 3, 16, 16), np.float32))


def test_example_input_dtype_and_shape_get_the_real_cause():
    model = Tiny().eval()
    for call in (spattern.compile, lambda m, x: spattern.prune(m, x, config=FAST, progress=False)):
        with pytest.raises(InputError, match="example input 0 is float64; spattern compiles float32"):
            call(model, torch.randn(1, 3, 8, 8, dtype=torch.float64))
        with pytest.raises(InputError, match=r"shape 3,8,8, but its first conv \(conv\) takes N,C,H,W with C = 3"):
            call(model, torch.randn(3, 8, 8))
        with pytest.raises(InputError, match=r"shape 1,1,8,8, .*C = 3: give a shape like 1,3,8,8"):
            call(model, torch.randn(1, 1, 8, 8))
    with pytest.raises(InputError, match="weights are float64"):
        spattern.compile(Tiny().double().eval(), torch.randn(1, 3, 8, 8))
    training = Tiny().train()
    with pytest.raises(InputError):
        check_example_input(training, [torch.randn(1, 1, 8, 8)])
    assert training.training  # the check runs in eval mode and gives the model back as it was
    # An input that the model takes eagerly is not refused: a bare conv runs a 3-D input unbatched.
    check_example_input(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), [torch.randn(3, 8, 8)])


def test_cli_wrong_rank_zoo_shape_is_not_blamed_on_control_flow(cli, tmp_path):
    line = _one_error_line(cli("compile", "--zoo", "vgg_small", "--num-classes", "10", "--input-shape", "1,16,16",
                                "-o", tmp_path / "m.vmfb"), "first conv (features.0) takes N,C,H,W with C = 3")
    assert "data-dependent" not in line


# --- model files ----------------------------------------------------------------------------------------------
def test_state_dict_for_another_zoo_model_is_summarised(tmp_path):
    save_file(models.build("resnet18", num_classes=10, image_size=16, width=0.25).state_dict(),
              tmp_path / "r18.safetensors")
    with pytest.raises(ModelLoadError) as e:
        load_model(tmp_path / "r18.safetensors", zoo="vgg_small", num_classes=10, image_size=16)
    msg = str(e.value)
    assert len(msg) < 600 and "\n" not in msg, msg
    assert "58 of the model's 58 keys are missing (features.0.weight" in msg and "keys are not in the model" in msg
    assert "another architecture" in msg


def test_state_dict_with_another_head_suggests_num_classes(cli, tmp_path):
    save_file(models.build("vgg_small", num_classes=100, image_size=16).state_dict(), tmp_path / "w.safetensors")
    _one_error_line(cli("compile", tmp_path / "w.safetensors", "--zoo", "vgg_small", "--num-classes", "10",
                         "--input-shape", "1,3,16,16", "-o", tmp_path / "m.vmfb"),
                    "only the classifier differs (classifier.0.weight, classifier.0.bias)", "--num-classes 100")


def test_describe_state_dict_mismatch():
    want = {"a.weight": torch.zeros(4, 3), "head.weight": torch.zeros(10, 4), "head.bias": torch.zeros(10)}
    assert describe_state_dict_mismatch(want, dict(want), 10) is None
    head = {**want, "head.weight": torch.zeros(7, 4), "head.bias": torch.zeros(7)}
    assert "--num-classes 7" in describe_state_dict_mismatch(want, head, 10)
    wider = {**head, "a.weight": torch.zeros(8, 3)}  # not only the head: no --num-classes advice
    text = describe_state_dict_mismatch(want, wider, 10)
    assert "--num-classes" not in text and "3 have another shape (e.g. a.weight: (8, 3) in the file" in text


def test_text_file_named_pt2_is_one_line(cli, tmp_path):
    (tmp_path / "m.pt2").write_text("this is not a model\n")
    _one_error_line(_cli("compile", tmp_path / "m.pt2", "-o", tmp_path / "o.vmfb"),
                    "is not an ExportedProgram saved with torch.export.save", "not a zip archive")
    with zipfile.ZipFile(tmp_path / "z.pt2", "w") as z:  # a zip, but not torch.export's
        z.writestr("hello.txt", "hi")
    _one_error_line(cli("compile", tmp_path / "z.pt2", "-o", tmp_path / "o.vmfb"),
                    "is not an ExportedProgram saved with torch.export.save")
