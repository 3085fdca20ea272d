# lit configuration for spattern: `.venv/bin/lit lit_tests -q`.
import os
import sys

import lit.formats

config.name = "spattern"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.excludes = ["Inputs"]
config.test_source_root = os.path.dirname(__file__)
root = os.path.dirname(config.test_source_root)
python = os.path.join(root, ".venv", "bin", "python")
if not os.path.exists(python):
    python = sys.executable
filecheck = os.path.join(os.path.dirname(python), "filecheck")
config.environment["PYTHONPATH"] = root
config.environment["PYTHONWARNINGS"] = "ignore"
config.substitutions.append(("%python", python))
config.substitutions.append(("spattern-opt", f"{python} -m spattern.opt"))
config.substitutions.append(("FileCheck", filecheck))
config.substitutions.append((r"(?<![/\w-])filecheck\b", filecheck))
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "Inputs")))
