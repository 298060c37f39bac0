"""``python -m codesign.examples NAME PATH [--seed N]``: write one example model.

NAME is a builder of :mod:`codesign.examples.models` that needs only a path (ffn_block,
float_mlp, qdq_mlp, dynamic_mlp, ...). Prints the path written.
"""

from __future__ import annotations

import argparse
import sys

from codesign.examples import models

BUILDERS = {
    "ffn_block": models.ffn_block,
    "float_mlp": models.float_mlp,
    "qdq_mlp": models.qdq_mlp,
    "dynamic_mlp": models.dynamic_mlp,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codesign.examples", description=__doc__)
    parser.add_argument("name", choices=sorted(BUILDERS))
    parser.add_argument("path")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(BUILDERS[args.name](args.path, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
