"""The export stage: a PyTorch module -> linalg-on-tensors MLIR (torch-mlir's FX importer).

Errors from torch.export (an untraceable module) and from torch-mlir's lowering become ModelExportError that names
the failing op or module, with torch-mlir's repro command where it gives one. The module keeps its weights as
`dense_resource` blobs: never print it without `large_elements_limit`.
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


def export_to_linalg(model: torch.nn.Module | torch.export.ExportedProgram,
                     example_inputs: Sequence[torch.Tensor]):
    """Export and lower to linalg-on-tensors; returns a `torch_mlir.ir.Module` with one function @main."""
    from torch_mlir import fx
    from torch_mlir.compiler_utils import OutputType, TorchMlirCompilerError

    program = model if isinstance(model, torch.export.ExportedProgram) else export_program(model, example_inputs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fx.export_and_import(program, output_type=OutputType.LINALG_ON_TENSORS, func_name=FUNC_NAME)
    except TorchMlirCompilerError as e:
        ops = sorted(set(re.findall(r"torch\.aten\.[\w.]+", str(e))))
        named = f" (unsupported: {', '.join(ops[:5])})" if ops else ""
        raise ModelExportError(
            f"torch-mlir could not lower the model to linalg{named}. Details and the repro command:\n{e}"
        ) from None
    except Exception as e:
        raise ModelExportError(f"torch-mlir could not import the model: {_describe_trace_error(e)}") from None


def module_to_bytecode(module) -> bytes:
    """MLIR bytecode of a module: weights stay binary (printed as text VGG-16 is 1.1 GB of hex)."""
    import io

    buf = io.BytesIO()
    module.operation.write_bytecode(buf)
    return buf.getvalue()


def module_to_text(module, large_elements_limit: int = 16) -> str:
    """Readable IR for dumps and errors: large constants are elided."""
    return module.operation.get_asm(large_elements_limit=large_elements_limit)
