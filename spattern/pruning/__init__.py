"""Data-free pattern + connectivity pruning (see "Pruning" in DESIGN.md).

    from spattern.pruning import prune, finetune, PruneConfig, LayerRule, save_pruned, load_pruned
    result = prune(model, torch.randn(1, 3, 32, 32), PruneConfig(default=LayerRule(connectivity=0.5)))
    save_pruned(result, "pruned/")

With PruneConfig(quantize="int8") the plan also holds the int8 model (plan.quant), run in PyTorch by
IntegerReference(result.model, result.plan.quant); calibrate_int8 / finetune_int8 are the owner's own-data options.
"""

from __future__ import annotations

from ..plan import LayerPlan, PatternPlan
from .apply import apply_plan, execution_order, plan_masks
from .config import LayerRule, PruneConfig
from .finetune import finetune
from .library import project, select_library, validate_library
from .prune import PruneResult, load_pruned, prune, save_pruned
from .qreference import IntegerReference
from .quantize import calibrate_int8, finetune_int8
from .synthetic import bn_matched_inputs, gaussian_inputs


__all__ = ["prune", "finetune", "PruneResult", "PruneConfig", "LayerRule", "PatternPlan", "LayerPlan",
           "save_pruned", "load_pruned", "apply_plan", "plan_masks", "execution_order", "select_library",
           "validate_library", "project", "bn_matched_inputs", "gaussian_inputs", "IntegerReference",
           "calibrate_int8", "finetune_int8"]
