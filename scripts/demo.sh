#!/usr/bin/env bash
# The main job on the bundled default: make a small int8 transformer-style FFN block (quantized by
# onnxruntime), compile it for vek280, simulate it against onnxruntime and print the report.
set -euo pipefail
source "$(dirname "$0")/setup-env.sh"
mkdir -p demo
.venv/bin/python -m codesign.examples ffn_block demo/ffn_int8.onnx
.venv/bin/codesign compile demo/ffn_int8.onnx --board vek280 -o demo/build --force
.venv/bin/codesign simulate demo/build --reference --output demo/outputs.npz
.venv/bin/codesign report demo/build
