"""``python -m engine demo|gpu-info|serve|verify``."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine")
    sub = parser.add_subparsers(dest="cmd", required=True)
    demo = sub.add_parser("demo", help="run the Load & Release scenario on a data directory")
    demo.add_argument("--data", default="./data")
    demo.add_argument("--device", default="auto")
    demo.add_argument("--rows", type=int, default=20_000)
    sub.add_parser("gpu-info", help="print the CUDA device this machine offers")
    from .server.main import add_parser as add_serve
    from .verify import add_parser as add_verify

    add_serve(sub)
    add_verify(sub)
    args = parser.parse_args(argv)
    if args.cmd in ("serve", "verify"):
        return args.func(args)
    if args.cmd == "demo":
        from .demo import run

        run(args.data, args.device, args.rows)
    elif args.cmd == "gpu-info":
        import torch

        if not torch.cuda.is_available():
            print("CUDA is not available to torch", torch.__version__)
            return 1
        props = torch.cuda.get_device_properties(0)
        print(f"GPU: {props.name}, {props.total_memory / 2**30:.1f} GiB, torch {torch.__version__}, "
              f"CUDA {torch.version.cuda}")
        from kernels import crossover

        print(crossover.describe(props.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
