"""Turns each microkernel call into an IREE custom dispatch that runs our C pattern kernel.

`lower-to-microkernels` (in torch-mlir's context, where no IREE dialect exists) leaves each pattern conv as
`func.call @spattern_mk_<n>(%padded_input, %weights, %table)` to a private declaration carrying
`spattern.microkernel = {workgroups = ...}`. Here, in IREE's own MLIR context, each such declaration gets a body:
flatten the operands, `flow.dispatch` a `stream.executable` whose `hal.executable.objects` names the kernel object
for the target and whose export returns the workgroup count, then reshape the result. The body declares the C
entry (`spattern_pattern_conv`; `spattern_conv1x1` or `spattern_maxpool2x2` for a declaration marked
`kernel = "conv1x1"` / `"maxpool2x2"`: all take the same five buffers) with `hal.import.static` and calls it with
`stream.binding.subspan` memrefs and the workgroup id. The call sites are untouched; IREE inlines the bodies. The module travels as bytecode both ways:
printed as text, VGG-16's weights alone are a gigabyte of hex.

A conv with a fused residual (`res_shape` below: the conv's unpadded output shape, which differs from `out_shape`
when the kernel writes its consumer's padded input) takes the residual as a fourth operand, bound read-only and passed
as the kernel's `res` buffer; without one, the weights buffer stands in for it (the kernel does not read it). Not a
result tied to the residual: IREE would then copy the residual first whenever it has another user (a ResNet
block's input feeds its first conv too), which costs what the fusion saves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spattern.errors import CompileError
from spattern.microkernels.kernels import KernelObject, kernel_object
from spattern.microkernels.microkernel_abi import PackedConv

MICROKERNEL_ATTR = "spattern.microkernel"
CALLEE_PREFIX = "spattern_mk_"


@dataclass(frozen=True)
class MicrokernelCall:
    """The operand/result shapes of one microkernel declaration and its workgroup count."""

    name: str
    in_shape: tuple[int, ...]
    w_len: int
    t_len: int
    out_shape: tuple[int, ...]
    workgroups: int
    res_shape: tuple[int, ...] | None = None  # shape of the 4th operand, the residual the kernel adds; None: none
    kernel: str = "pattern_conv"  # which C kernel (spattern.microkernels.kernels.KERNELS): same five-buffer ABI


def _tensor(shape: tuple[int, ...], elt: str) -> str:
    return "tensor<" + "x".join(str(d) for d in shape) + f"x{elt}>"


def _flat(shape: tuple[int, ...]) -> int:
    return int(math.prod(shape))


def declaration_text(call: MicrokernelCall) -> str:
    """The private declaration lower-to-microkernels emits (upstream func dialect only)."""
    residual = f", {_tensor(call.res_shape, 'f32')}" if call.res_shape is not None else ""
    kernel = f', kernel = "{call.kernel}"' if call.kernel != "pattern_conv" else ""
    return (f"func.func private @{call.name}({_tensor(call.in_shape, 'f32')}, tensor<{call.w_len}xf32>, "
            f"tensor<{call.t_len}xi32>{residual}) -> {_tensor(call.out_shape, 'f32')} attributes "
            f"{{{MICROKERNEL_ATTR} = {{workgroups = {call.workgroups} : i64{kernel}}}}}")


def dispatch_text(call: MicrokernelCall, obj: KernelObject) -> str:
    """stream.executable + the function body that dispatches it, as IREE-context MLIR text."""
    n_in, n_out = _flat(call.in_shape), _flat(call.out_shape)
    rank_in, rank_out = len(call.in_shape), len(call.out_shape)
    reassoc_in = "[[" + ", ".join(str(i) for i in range(rank_in)) + "]]"
    reassoc_out = "[[" + ", ".join(str(i) for i in range(rank_out)) + "]]"
    out_dims = ", ".join(str(d) for d in call.out_shape)
    ex = f"{call.name}_ex"
    res_arg = res_flat = res_operand = res_type = res_binding = res_subspan = ""
    res_memref = "%dw"
    if call.res_shape is not None:
        r_t, n_res = _tensor(call.res_shape, "f32"), _flat(call.res_shape)
        reassoc_res = "[[" + ", ".join(str(i) for i in range(len(call.res_shape))) + "]]"
        res_arg = f", %r: {r_t}"
        res_flat = f"\n  %rf = tensor.collapse_shape %r {reassoc_res} : {r_t} into tensor<{n_res}xf32>"
        res_operand, res_type, res_binding = ", %rf", f", tensor<{n_res}xf32>", " %br: !stream.binding,"
        res_memref = "%dr"
        res_subspan = (f"\n      %mr = stream.binding.subspan %br[%c0] : !stream.binding -> memref<{n_res}xf32>"
                       f"\n      %dr = memref.cast %mr : memref<{n_res}xf32> to memref<?xf32>")
    path = str(obj.path).replace("\\", "\\\\").replace('"', '\\"')
    return f"""
stream.executable private @{ex} attributes {{
  hal.executable.objects = #hal.executable.objects<{{
    #hal.executable.target<"llvm-cpu", "{obj.iree_format}"> = [#hal.executable.object<{{path = "{path}"}}>]
  }}>
}} {{
  stream.executable.export public @{call.name} workgroups(%n: index) -> (index, index, index) {{
    %c1 = arith.constant 1 : index
    stream.return %n, %c1, %c1 : index, index, index
  }}
  builtin.module {{
    func.func private @{obj.symbol}(memref<?xf32>, memref<?xf32>, memref<?xi32>, memref<?xf32>, memref<?xf32>,
                                    index) attributes {{hal.import.static}}
    func.func @{call.name}(%bi: !stream.binding, %bw: !stream.binding, %bt: !stream.binding,{res_binding}
                            %bo: !stream.binding) {{
      %c0 = arith.constant 0 : index
      %mi = stream.binding.subspan %bi[%c0] : !stream.binding -> memref<{n_in}xf32>
      %mw = stream.binding.subspan %bw[%c0] : !stream.binding -> memref<{call.w_len}xf32>
      %mt = stream.binding.subspan %bt[%c0] : !stream.binding -> memref<{call.t_len}xi32>
      %mo = stream.binding.subspan %bo[%c0] : !stream.binding -> memref<{n_out}xf32>
      %di = memref.cast %mi : memref<{n_in}xf32> to memref<?xf32>
      %dw = memref.cast %mw : memref<{call.w_len}xf32> to memref<?xf32>
      %dt = memref.cast %mt : memref<{call.t_len}xi32> to memref<?xi32>
      %do = memref.cast %mo : memref<{n_out}xf32> to memref<?xf32>{res_subspan}
      %id = stream.dispatch.workgroup.id[0] : index
      func.call @{obj.symbol}(%di, %dw, %dt, {res_memref}, %do, %id)
          : (memref<?xf32>, memref<?xf32>, memref<?xi32>, memref<?xf32>, memref<?xf32>, index) -> ()
      return
    }}
  }}
}}
func.func private @{call.name}(%x: {_tensor(call.in_shape, 'f32')}, %w: tensor<{call.w_len}xf32>,
                                %t: tensor<{call.t_len}xi32>{res_arg}) -> {_tensor(call.out_shape, 'f32')} {{
  %n = arith.constant {call.workgroups} : index
  %xf = tensor.collapse_shape %x {reassoc_in} : {_tensor(call.in_shape, 'f32')} into tensor<{n_in}xf32>{res_flat}
  %yf = flow.dispatch @{ex}::@{call.name}[%n](%xf, %w, %t{res_operand})
      : (tensor<{n_in}xf32>, tensor<{call.w_len}xf32>, tensor<{call.t_len}xi32>{res_type}) -> tensor<{n_out}xf32>
  %y = tensor.expand_shape %yf {reassoc_out} output_shape [{out_dims}]
      : tensor<{n_out}xf32> into {_tensor(call.out_shape, 'f32')}
  return %y : {_tensor(call.out_shape, 'f32')}
}}
"""


def _shape(t) -> tuple[int, ...]:
    return tuple(int(d) for d in t.shape)


def _calls_in(module) -> list[tuple[object, MicrokernelCall]]:
    """(declaration op, its shapes) for every microkernel declaration at the module's top level."""
    from iree.compiler import ir

    found = []
    for op in module.body.operations:
        if op.operation.name != "func.func" or MICROKERNEL_ATTR not in op.attributes:
            continue
        fn_type = ir.FunctionType(ir.TypeAttr(op.attributes["function_type"]).value)
        ins = [ir.RankedTensorType(t) for t in fn_type.inputs]
        outs = [ir.RankedTensorType(t) for t in fn_type.results]
        meta = ir.DictAttr(op.attributes[MICROKERNEL_ATTR])
        name = ir.StringAttr(op.attributes["sym_name"]).value
        if len(ins) not in (3, 4) or len(outs) != 1:
            raise CompileError(f"microkernel declaration @{name} must take (input, weights, table[, residual]) "
                               "-> output")
        kernel = ir.StringAttr(meta["kernel"]).value if "kernel" in meta else "pattern_conv"
        call = MicrokernelCall(name, _shape(ins[0]), _shape(ins[1])[0], _shape(ins[2])[0], _shape(outs[0]),
                               ir.IntegerAttr(meta["workgroups"]).value,
                               res_shape=_shape(ins[3]) if len(ins) == 4 else None, kernel=kernel)
        found.append((op, call))
    return found


def materialize_microkernels(module_bytecode: bytes, target_triple_or_name: str = "host") -> bytes:
    """Gives every microkernel declaration in the module a body that dispatches the kernel object for the
    target (host, x86_64*, aarch64*/arm64*); returns the module as bytecode for iree-compile. A module without
    microkernel calls comes back unchanged."""
    from iree.compiler import ir

    ctx = ir.Context()
    ctx.allow_unregistered_dialects = True
    with ctx, ir.Location.unknown():
        try:
            module = ir.Module.parse(module_bytecode)
        except Exception as e:  # noqa: BLE001 - MLIR raises its own error types
            raise CompileError(f"materialize_microkernels: the module does not parse in IREE's context: {e}") from e
        calls = _calls_in(module)
        if not calls:
            return module_bytecode
        objects = {kernel: kernel_object(target_triple_or_name, kernel) for kernel in {c.kernel for _, c in calls}}
        for decl, call in calls:
            try:
                snippet = ir.Module.parse(dispatch_text(call, objects[call.kernel]))
            except Exception as e:  # noqa: BLE001
                raise CompileError(f"building the dispatch for @{call.name} failed: {e}") from e
            for op in list(snippet.body.operations):
                op.operation.move_before(decl)
            decl.operation.erase()
        import io

        buf = io.BytesIO()
        module.operation.write_bytecode(buf)
        return buf.getvalue()


def dense_hex(a: np.ndarray, elt: str) -> str:
    """An MLIR dense attribute of `a` in hex, with its type: `dense<"0x..."> : tensor<...x elt>` (a's shape)."""
    return f'dense<"0x{a.astype("<" + a.dtype.str[1:]).tobytes().hex().upper()}"> : {_tensor(a.shape, elt)}'


def single_conv_module(packed: PackedConv, name: str = "spattern_mk_0", func: str = "main") -> str:
    """A module with one conv in the lowered (pre-IREE) form: pad the input, then call the microkernel
    declaration with constant weights and table. Text (hex constants): for tests and per-layer benchmarks."""
    g = packed.geometry
    top, bottom, left, right = g.pads()
    x_t = _tensor((g.n, g.c, g.h, g.w), "f32")
    call = MicrokernelCall(name, packed.padded_in_shape, packed.weights.size, packed.table.size,
                           packed.out_shape, packed.workgroups)
    p_t = _tensor(call.in_shape, "f32")
    o_t = _tensor(call.out_shape, "f32")
    return f"""
{declaration_text(call)}
func.func @{func}(%x: {x_t}) -> {o_t} {{
  %zero = arith.constant 0.0 : f32
  %p = tensor.pad %x low[0, 0, {top}, {left}] high[0, 0, {bottom}, {right}] {{
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):
    tensor.yield %zero : f32
  }} : {x_t} to {p_t}
  %w = arith.constant {dense_hex(packed.weights, "f32")}
  %t = arith.constant {dense_hex(packed.table, "i32")}
  %y = func.call @{name}(%p, %w, %t) : ({p_t}, tensor<{call.w_len}xf32>, tensor<{call.t_len}xi32>) -> {o_t}
  return %y : {o_t}
}}
"""


def text_to_bytecode(text: str) -> bytes:
    """Parses MLIR text in IREE's context and returns bytecode (for hand-written / test modules)."""
    import io

    from iree.compiler import ir

    ctx = ir.Context()
    ctx.allow_unregistered_dialects = True
    with ctx:
        module = ir.Module.parse(text)
        buf = io.BytesIO()
        module.operation.write_bytecode(buf)
        return buf.getvalue()
