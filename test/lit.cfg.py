# lit configuration of AMP-MLIR: FileCheck tests of the dialect, importer,
# passes, plan lowering and tools.
import os
import shutil

import lit.formats
from lit.llvm import llvm_config

config.name = "AMP-MLIR"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.amp_obj_root, "test")

llvm_config.with_system_environment(["HOME", "TMPDIR"])
llvm_config.use_default_substitutions()
config.substitutions.append(("%python", config.python_executable))
config.substitutions.append(("%models", os.path.join(config.test_source_root, "Inputs", "onnx_models.py")))
# A binary plan as protobuf text, to compare with --emit=plan-text (protoc
# builds the project, so it is there).
config.substitutions.append(
    ("%decode-plan", "{} --decode=amprt.proto.Plan --proto_path={} plan.proto".format(
        shutil.which("protoc") or "protoc", os.path.join(config.amp_src_root, "runtime", "proto"))))
llvm_config.add_tool_substitutions(["amp-opt", "amp-run", "example-trainer"], [config.amp_tools_dir])
llvm_config.add_tool_substitutions(["FileCheck", "not", "count"], [config.llvm_tools_dir])
