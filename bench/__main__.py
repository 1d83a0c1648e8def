"""``python -m bench <insert|load|search|kernels|filter|serve|grpc|roofline|scale> ...``"""
from __future__ import annotations

import argparse
import sys

from . import filter, grpc, insert, kernels, load, roofline, scale, search, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="cmd", required=True)
    insert.add_parser(sub)
    search.add_parser(sub)
    kernels.add_parser(sub)
    load.add_parser(sub)
    filter.add_parser(sub)
    serve.add_parser(sub)
    grpc.add_parser(sub)
    roofline.add_parser(sub)
    scale.add_parser(sub)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
