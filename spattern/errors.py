"""The project's exception types.

Every error a user can cause is one of these, with a message that says what to do. Errors from deep inside
MLIR, IREE or torch.export are caught at the stage boundary and re-raised as one of these (with the failing IR
written to a file where that helps), so a user never reads a C++ diagnostic as the first thing.
"""

from __future__ import annotations


class SpatternError(Exception):
    """Base class: catch this to handle any error spattern raises on purpose."""


class ModelExportError(SpatternError):
    """The model could not be traced by torch.export or imported by torch-mlir."""


class UnknownTargetError(SpatternError):
    """The target name is not one spattern knows."""


class InputError(SpatternError):
    """An input array has the wrong shape, dtype or count for the compiled function."""


class OutputPathError(SpatternError):
    """An output path cannot be written (missing parent, no permission, a directory in the way)."""


class ModelLoadError(SpatternError):
    """A model or module file cannot be loaded safely (wrong format, missing, corrupt)."""


class CompileError(SpatternError):
    """A compiler stage failed. The message names the stage, the file holding the failing IR and the command
    that reproduces the failure."""


class PlanError(SpatternError):
    """A PatternPlan is inconsistent with itself or with the model it is applied to."""


class ConfigError(SpatternError):
    """A pruning or compile configuration is invalid."""


class PatternVerifyError(SpatternError):
    """A sparse_pattern op violates one of the dialect's invariants."""


class ToolUnavailableError(SpatternError):
    """A system tool or runtime that a target needs (qemu, a Vulkan driver, the aarch64 runtime) is missing.
    The message names the package to install."""


class DatasetError(SpatternError):
    """A dataset folder or file is missing, malformed, or not in the expected format."""
