"""spattern-opt: run sparse_pattern passes on an MLIR file (text or bytecode), for lit tests and repro commands.

    python -m spattern.opt --pass-pipeline=import-patterns,lower-to-linalg --plan plan.json in.mlir [-o out.mlir]
    python -m spattern.opt --verify-only in.mlir          # parse + run the sparse_pattern verifier
    python -m spattern.opt --export-demo conv3x3          # a one-conv model through the torch-mlir export
    python -m spattern.opt --materialize=host in.mlirbc -o out.mlirbc
                                                          # microkernel calls -> IREE dispatches (the finalize step)

Errors print one line `error: <message>` on stderr and exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from torch_mlir import ir

from .dialect.sparse_pattern import load_dialect, verify_module
from .errors import SpatternError
from .plan import PatternPlan


def _read_module(path: str, context: ir.Context) -> ir.Module:
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    with context:
        if data.startswith(b"ML\xefR"):
            return ir.Module.parse(data)
        return ir.Module.parse(data.decode())


def _export_demo(kind: str) -> ir.Module:
    import torch
    from torch_mlir import fx
    from torch_mlir.fx import OutputType

    layers = {"conv3x3": torch.nn.Conv2d(4, 8, 3, padding=1, bias=False),
              "conv-bn": torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1, bias=False),
                                             torch.nn.BatchNorm2d(8))}
    torch.manual_seed(0)
    model = layers[kind].eval()
    return fx.export_and_import(model, torch.randn(1, 4, 8, 8), output_type=OutputType.LINALG_ON_TENSORS,
                                func_name="main")


def _materialize(args: argparse.Namespace) -> int:
    """--materialize: IREE's context, not ours (the module already holds IREE ops after finalize), so the input
    goes through as bytes."""
    from .microkernels.microkernel_dispatch import materialize_microkernels

    data = sys.stdin.buffer.read() if args.input == "-" else Path(args.input).read_bytes()
    out = materialize_microkernels(data, args.materialize)
    if args.output:
        Path(args.output).write_bytes(out)
    return 0


def main(argv: list[str] | None = None) -> int:
    from .passes.registry import print_ir, run_passes

    ap = argparse.ArgumentParser(prog="spattern-opt", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", nargs="?", default="-")
    ap.add_argument("--pass-pipeline", default="", help="comma-separated pass names")
    ap.add_argument("--plan", help="plan.json (or its folder), for import-patterns")
    ap.add_argument("-o", "--output", help="write the result here (text) instead of stdout")
    ap.add_argument("--emit-bytecode", action="store_true", help="write bytecode to -o (keeps weights)")
    ap.add_argument("--verify-only", action="store_true")
    ap.add_argument("--elements-limit", type=int, default=None, help="print constants up to this size")
    ap.add_argument("--stats", action="store_true", help="print each pass's statistics as JSON on stderr")
    ap.add_argument("--dump-dir", help="write the IR after every pass here")
    ap.add_argument("--mmt4d-tile", type=int, default=0,
                    help="lower-to-linalg: gather into IREE's mmt4d layout with this tile (CPU targets; 0: GPU form)")
    ap.add_argument("--materialize", metavar="TARGET",
                    help="run only the finalize step (materialize_microkernels) for TARGET on a lowered module")
    ap.add_argument("--export-demo", choices=["conv3x3", "conv-bn"], help="print a torch-mlir export of a small layer")
    args = ap.parse_args(argv)
    try:
        if args.materialize:
            return _materialize(args)
        if args.export_demo:
            module = _export_demo(args.export_demo)
            load_dialect(module.context)
        else:
            context = ir.Context()
            load_dialect(context)
            module = _read_module(args.input, context)
        verify_module(module)
        plan = PatternPlan.load(args.plan) if args.plan else None
        names = [n.strip() for n in args.pass_pipeline.split(",") if n.strip()]
        ctx = None
        if names and not args.verify_only:
            ctx = run_passes(module, plan, names, dump_dir=args.dump_dir, mmt4d_tile=args.mmt4d_tile)
        if args.stats and ctx is not None:
            print(json.dumps(ctx.stats), file=sys.stderr)
        if args.output and args.emit_bytecode:
            with open(args.output, "wb") as f:
                module.operation.write_bytecode(f)
        elif args.output:
            Path(args.output).write_text(print_ir(module, args.elements_limit))
        else:
            sys.stdout.write(print_ir(module, args.elements_limit))
        return 0
    except (SpatternError, ir.MLIRError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
