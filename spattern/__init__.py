"""spattern: a pattern-pruning compiler for phones.

    import spattern
    result = spattern.prune(model, example_input)            # data-free pattern + connectivity pruning
    compiled = spattern.compile(result.model, example_input, plan=result.plan, target="host")
    outputs = compiled.run(x_numpy)

The heavy modules (torch-mlir, IREE) load on first use, so `import spattern` stays fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = {"compile", "load", "prune", "finetune", "CompiledModel", "PruneResult"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'spattern' has no attribute {name!r}")


__all__ = sorted(_API)
