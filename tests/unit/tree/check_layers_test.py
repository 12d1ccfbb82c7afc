"""scripts/check_layers.py on small planted trees: it passes includes that point down the
library order and fails the ones that point up, the coordinator including model or CUDA
headers first among them."""
import os
import pathlib
import subprocess
import sys
import tempfile

SCRIPT = pathlib.Path(os.environ["SHARDWISE_SOURCE_DIR"]) / "scripts" / "check_layers.py"


def run_on(files: dict[str, str]) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as root:
        for name, text in files.items():
            path = pathlib.Path(root) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return subprocess.run([sys.executable, str(SCRIPT), root], capture_output=True, text=True)


def expect(files: dict[str, str], fails: bool, mentions: str = "") -> None:
    result = run_on(files)
    assert (result.returncode != 0) == fails, (files, result.stdout, result.stderr)
    assert mentions in result.stderr, (mentions, result.stderr)


DOWNWARD = {
    "common/status.h": "#pragma once\n",
    "models/llama_model.h": '#include "common/status.h"\n#include "kernels/cpu/linear.h"\n',
    "shard/engine/engine.h": '#include "shard/runner/model_runner.h"\n',
    "coordinator/registry.h": '#include "tokenizer/tokenizer.h"\n#include "shardwise/v1/shard.pb.h"\n',
}
expect(DOWNWARD, fails=False)
expect({**DOWNWARD, "coordinator/auth.h": '#include "models/cuda_llama_model.h"\n'}, fails=True,
       mentions="coordinator/auth.h:1: coordinator includes models/cuda_llama_model.h")
expect({**DOWNWARD, "coordinator/auth.h": "#include <cuda_runtime.h>\n"}, fails=True,
       mentions="includes a CUDA header")
expect({**DOWNWARD, "models/x.cpp": '#include "shard/runner/model_runner.h"\n'}, fails=True,
       mentions="but may not depend on shard/runner")
expect({**DOWNWARD, "shard/runner/r.cpp": '#include "shard/engine/engine.h"\n'}, fails=True,
       mentions="shard/runner/r.cpp:1")
expect({**DOWNWARD, "kernels/cpu/k.cpp": '#include "comm/communicator.h"\n'}, fails=True,
       mentions="kernels/cpu/k.cpp:1")
expect({**DOWNWARD, "tokenizer/t.cpp": '#include "models/model_config.h"\n'}, fails=True,
       mentions="tokenizer/t.cpp:1")
print("check_layers_test: 7 planted trees judged as expected")
