"""The sparse_pattern dialect (see sparse_pattern.py) and constant helpers; knows no pass."""

from .constants import NotConstant, attr_array, constant_array, try_constant_array
from .sparse_pattern import (CONV2D, Conv2dInfo, Conv2dOp, SparsePattern, conv2d_info, conv2d_ops, i8_elements,
                             i32_elements, i64_array, library_taps, load_dialect, verify_conv2d, verify_module)

__all__ = ["CONV2D", "Conv2dInfo", "Conv2dOp", "SparsePattern", "NotConstant", "attr_array", "constant_array",
           "try_constant_array", "conv2d_info", "conv2d_ops", "i8_elements", "i32_elements", "i64_array",
           "library_taps", "load_dialect", "verify_conv2d", "verify_module"]
