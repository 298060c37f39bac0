#!/usr/bin/env bash
# The main job on the bundled default: make a small int8 transformer-style FFN block (quantized by
# onnxruntime), compile it for vek280, simulate it against onnxruntime and print the report.
# The report's PL figures need yosys (synth_xilinx) to synthesise the RTL blocks: the demo
# installs it with apt-get when it can, and otherwise says that the PL figures will be marked
# "not synthesised" (compile prints the same warning).
set -euo pipefail
source "$(dirname "$0")/setup-env.sh"
if ! command -v yosys >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || command -v sudo >/dev/null 2>&1; }; then
    echo "demo: installing yosys for the report's PL figures (apt-get install yosys)" >&2
    apt_install yosys || echo "demo: could not install yosys; the report's PL figures will be marked not synthesised" >&2
  else
    echo "demo: yosys is not installed and cannot be installed here (no apt-get/sudo);" \
      "the report's PL figures will be marked not synthesised" >&2
  fi
fi
mkdir -p demo
.venv/bin/python -m codesign.examples ffn_block demo/ffn_int8.onnx
.venv/bin/codesign compile demo/ffn_int8.onnx --board vek280 -o demo/build --force
.venv/bin/codesign simulate demo/build --reference --output demo/outputs.npz
.venv/bin/codesign report demo/build
