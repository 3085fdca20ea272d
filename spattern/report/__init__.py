"""Per-layer report: where a model's MACs and time go, and what pruning kept.

A user who compiled a model wants to know which layers the pattern kernels serve, how much work each layer still
does, and where the time goes. The table is computed from the torch model (forward hooks give each layer's
shapes and MACs) and the PatternPlan (pattern or dense, filter block, the fraction of MACs kept).

The package's seams: `layers` (the rows, from the torch model and the plan), `tables` (the rows and the
fallbacks as text), `results` (bench/peers.py and accuracy result files), `plot` (the PNG) and `command`
(`spattern report`). The names below are the package's interface.
"""

from .command import report_command
from .layers import LayerRow, Totals, layer_table, totals
from .plot import PLOT_DPI, PLOT_SIZE_IN, PLOT_SIZE_PX, plot, plot_size_px
from .results import (SPATTERN_ENGINES, AccuracyPoint, Speedups, read_accuracy, read_peer_ratios, read_peers,
                      speedups_vs_peers)
from .tables import attach_layers, fallback_table, format_report, passes_fallbacks, render, rows_table

__all__ = ["report_command", "LayerRow", "Totals", "layer_table", "totals", "PLOT_DPI", "PLOT_SIZE_IN",
           "PLOT_SIZE_PX", "plot", "plot_size_px", "SPATTERN_ENGINES", "AccuracyPoint", "Speedups", "read_accuracy",
           "read_peer_ratios", "read_peers", "speedups_vs_peers", "attach_layers", "fallback_table",
           "format_report", "passes_fallbacks", "render", "rows_table"]
