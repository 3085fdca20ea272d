"""The export stage: a PyTorch module -> linalg-on-tensors MLIR (torch-mlir's FX importer).

Errors from torch.export (an untraceable module) and from torch-mlir's lowering become ModelExportError that names
the failing op or module, with torch-mlir's repro command where it gives one. The module keeps its weights as
`dense_resource` blobs: never print it without `large_elements_limit` and `large_resource_limit`.

Each weight blob is named after its state-dict key (`dense_resource<features.3.weight>`), so a pass can find
the module a conv came from, and read its values from the model's state dict: the Python bindings cannot read a
`dense_resource` blob back (`weights_by_name(model)` gives those arrays). Constants a pass creates itself should be
DenseElementsAttr (readable with `np.array(attr)`) or resources it keeps its own arrays for.
"""

from __future__ import annotations

import re
import warnings
from typing import Sequence

import torch

from ..errors import ModelExportError

FUNC_NAME = "main"


def _describe_trace_error(err: Exception) -> str:
    text = str(err)
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    hints = []
    m = re.search(r"(?:File \"[^\"]+\", line \d+, in (\w+))", text)
    if m:
        hints.append(f"in {m.group(1)}()")
    for pattern in (r"aten\.[\w.]+", r"torch\.ops\.[\w.]+", r"Module\s+(\S+)"):
        found = re.search(pattern, text)
        if found:
            hints.append(found.group(0))
            break
    return f"{first}" + (f" ({'; '.join(hints)})" if hints else "")


def export_program(model: torch.nn.Module, example_inputs: Sequence[torch.Tensor]) -> torch.export.ExportedProgram:
    """torch.export the model in eval mode; ModelExportError names what could not be traced."""
    if not isinstance(model, torch.nn.Module):
        raise ModelExportError(f"expected a torch.nn.Module, got {type(model).__name__}")
    model = model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.export.export(model, tuple(example_inputs), strict=False)
    except Exception as e:  # torch.export raises many types; all mean "cannot trace"
        raise ModelExportError(
            f"torch.export could not trace {type(model).__name__}: {_describe_trace_error(e)}. spattern needs a "
            "model without data-dependent Python control flow; rewrite that part with torch ops "
            "(e.g. torch.where) or export it yourself and pass the ExportedProgram."
        ) from None


def _state_names(program: torch.export.ExportedProgram) -> dict[int, str]:
    names = {id(t): name for name, t in program.state_dict.items()}
    names.update({id(t): name for name, t in getattr(program, "constants", {}).items() if isinstance(t, torch.Tensor)})
    return names


def _literal_hooks(names: dict[int, str]):
    """FxImporter hooks that turn weights into `dense_resource` blobs without a detour through Python lists.

    torch-mlir's default literal path runs `np.array(tensor.tolist())`: for VGG-16 that is 19 s and several GB
    of Python floats. Here the blob is a view of the tensor's own memory, and it is named after the parameter
    (e.g. `features.3.weight`), which is what lets import-patterns find a conv's plan layer by name.
    """
    from torch_mlir.extras.fx_importer import FxImporterHooks, create_mlir_tensor_type
    from torch_mlir.ir import DenseResourceElementsAttr, Operation

    class _Hooks(FxImporterHooks):
        def __init__(self) -> None:
            self._names = names
            self._attrs: dict[int, object] = {}
            self._keep: list[object] = []

        def resolve_literal(self, gni, literal, info):
            if not isinstance(literal, torch.Tensor) or literal.numel() <= 1:
                return None
            if literal.dtype not in (torch.float32, torch.float64, torch.int64, torch.int32, torch.float16):
                return None
            if type(literal) is not torch.Tensor and not isinstance(literal, torch.nn.Parameter):
                return None  # fake or subclassed tensors take the default path
            attr = self._attrs.get(id(literal))
            if attr is None:
                array = literal.detach().contiguous().numpy()
                self._keep.append(array)  # the blob views this memory
                name = self._names.get(id(literal)) or "_".join(["torch_tensor", *map(str, literal.shape)])
                vtype = gni._cc.tensor_to_vtensor_type(literal)
                attr = DenseResourceElementsAttr.get_from_buffer(array, name, create_mlir_tensor_type(literal))
                self._attrs[id(literal)] = (attr, vtype)
            attr, vtype = self._attrs[id(literal)]
            return Operation.create(name="torch.vtensor.literal", results=[vtype], attributes={"value": attr}).result

    return _Hooks()


def export_to_linalg(model: torch.nn.Module | torch.export.ExportedProgram,
                     example_inputs: Sequence[torch.Tensor]):
    """Export and lower to linalg-on-tensors; returns a `torch_mlir.ir.Module` with one function @main."""
    from torch_mlir import fx
    from torch_mlir.compiler_utils import OutputType, TorchMlirCompilerError

    program = model if isinstance(model, torch.export.ExportedProgram) else export_program(model, example_inputs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fx.export_and_import(program, output_type=OutputType.LINALG_ON_TENSORS, func_name=FUNC_NAME,
                                        hooks=_literal_hooks(_state_names(program)))
    except TorchMlirCompilerError as e:
        ops = sorted(set(re.findall(r"torch\.aten\.[\w.]+", str(e))))
        named = f" (unsupported: {', '.join(ops[:5])})" if ops else ""
        raise ModelExportError(
            f"torch-mlir could not lower the model to linalg{named}. Details and the repro command:\n{e}"
        ) from None
    except Exception as e:
        raise ModelExportError(f"torch-mlir could not import the model: {_describe_trace_error(e)}") from None


def weights_by_name(model: torch.nn.Module | torch.export.ExportedProgram):
    """State-dict arrays by the names the export gives their `dense_resource` blobs."""
    state = model.state_dict if isinstance(model, torch.export.ExportedProgram) else model.state_dict()
    return {name: t.detach().cpu().numpy() for name, t in state.items()}


def module_to_bytecode(module) -> bytes:
    """MLIR bytecode of a module: weights stay binary (printed as text VGG-16 is 1.1 GB of hex)."""
    import io

    buf = io.BytesIO()
    module.operation.write_bytecode(buf)
    return buf.getvalue()


def module_to_text(module, large_elements_limit: int = 16) -> str:
    """Readable IR for dumps and errors: large constants are elided."""
    return module.operation.get_asm(large_elements_limit=large_elements_limit,
                                    large_resource_limit=large_elements_limit)
