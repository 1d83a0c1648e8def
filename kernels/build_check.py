"""Compile the Triton kernels for a GPU architecture without a GPU, and report what each
variant uses: registers per thread, stack (spill) bytes and shared memory.

    python -m kernels.build_check [--arch 90] [--quick] [--json]

Triton ships ptxas and cuobjdump, so this runs on any machine with Triton installed; CI uses
it (``tests/kernels/test_triton_build.py``) to hold the kernels free of spills on Hopper,
since a kernel that spills is slow whatever its results are. Must run without
``TRITON_INTERPRET`` (the interpreter replaces compiled kernels).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

_IVF = {"q_ptr": "*fp32", "x_ptr": "*fp32", "xsq_ptr": "*fp32", "off_ptr": "*i64",
        "probe_ptr": "*i64", "mask_ptr": "*i8", "out_ptr": "*i64", "nprobe": "i32",
        "d": "i32", "lo": "fp32", "hi": "fp32", "q_sq_ptr": "*fp32"}
_SQ8 = {"q_ptr": "*fp32", "codes_ptr": "*u8", "scale_ptr": "*fp32", "base_ptr": "*fp32",
        "off_ptr": "*i64", "probe_ptr": "*i64", "mask_ptr": "*i8", "out_ptr": "*i64",
        "nprobe": "i32", "d": "i32", "lo": "fp32", "hi": "fp32", "q_sq_ptr": "*fp32"}
_PQ = {"q_ptr": "*fp32", "codes_ptr": "*u8", "cent_ptr": "*fp32", "cb_ptr": "*fp32",
       "cb_sq_ptr": "*fp32", "off_ptr": "*i64", "probe_ptr": "*i64", "mask_ptr": "*i8",
       "out_ptr": "*i64", "nprobe": "i32", "d": "i32", "m": "i32", "lo": "fp32",
       "hi": "fp32"}
_HNSW = {"q_ptr": "*fp32", "x_ptr": "*fp32", "xsq_ptr": "*fp32", "nbr_ptr": "*i32",
         "start_ptr": "*i64", "start_d_ptr": "*fp32", "mask_ptr": "*i8", "out_ptr": "*i64",
         "d": "i32", "R": "i32", "ef": "i32", "max_rounds": "i32"}
_GROUPED = {"q_ptr": "*fp32", "x_ptr": "*fp32", "xsq_ptr": "*fp32", "qsq_ptr": "*fp32",
            "off_ptr": "*i64", "tile_list_ptr": "*i64", "tile_start_ptr": "*i64",
            "tile_count_ptr": "*i64", "pair_q_ptr": "*i64", "pair_id_ptr": "*i64",
            "mask_ptr": "*i8", "out_ptr": "*i64", "a_ptr": "*fp32", "b_ptr": "*fp32",
            "d": "i32", "lo": "fp32", "hi": "fp32"}
# kernel -> (module, function, signature, the module's warps constant)
KERNELS = {"ivf": ("triton_ivf", "_ivf_scan_topk", _IVF, "NUM_WARPS"),
           "sq8": ("triton_quant", "_sq8_scan_topk", _SQ8, "NUM_WARPS"),
           "pq": ("triton_quant", "_pq_scan_topk", _PQ, "PQ_WARPS"),
           "hnsw": ("triton_hnsw", "_hnsw_beam", _HNSW, "NUM_WARPS"),
           "grouped": ("triton_grouped", "_grouped_scan_topk", _GROUPED, "NUM_WARPS")}


def variants(quick: bool = False) -> list[dict]:
    """The specialisations a search can launch (metric, mask, K; split 1 and > 1); with
    ``quick``, a few that between them take every branch of each kernel. Each names its
    ``kernel``."""
    from . import triton_ivf as t
    if quick:
        picks = [(0, True, 16, 1), (1, False, t.MAX_K, 8), (2, True, t.MAX_K, 1),
                 (0, False, 16, 8)]
    else:
        picks = [(m, h, k, s) for m in (0, 1, 2) for h in (False, True)
                 for k in (16, t.MAX_K) for s in (1, 8)]
    out = [{"kernel": "ivf", "METRIC": m, "HAS_MASK": h, "K": k, "SPLIT": s,
            "BLOCK": t.BLOCK, "BLOCK_D": t.BLOCK_D} for m, h, k, s in picks]
    for l2, h, k, s in [(True, True, 16, 1), (False, False, t.MAX_K, 8)] if quick else \
            [(l2, h, k, s) for l2 in (True, False) for h in (False, True)
             for k in (16, t.MAX_K) for s in (1, 8)]:
        out.append({"kernel": "sq8", "L2": l2, "HAS_MASK": h, "K": k, "SPLIT": s,
                    "BLOCK": t.BLOCK, "BLOCK_D": t.BLOCK_D})
        out.append({"kernel": "pq", "L2": l2, "HAS_MASK": h, "K": k, "SPLIT": s,
                    "BLOCK": 64, "M": 16, "DSUB": 8, "BLOCK_D": t.BLOCK_D})
    # HNSW: the widest beam and lanes it takes (M = 16 at width 4, M = 30 at width 2)
    for m, h, ef, w in [(0, True, 128, 4), (2, False, 64, 2)] if quick else \
            [(m, h, ef, w) for m in (0, 1, 2) for h in (False, True) for ef in (64, 128)
             for w in (2, 4)]:
        out.append({"kernel": "hnsw", "METRIC": m, "HAS_MASK": h, "EF": ef, "W": w,
                    "NB": 128, "BLOCK_D": t.BLOCK_D})
    from . import triton_grouped as g
    for m, h, k, half in [(0, True, 16, False), (2, False, t.MAX_K, True)] if quick else \
            [(m, h, k, half) for m in (0, 1, 2) for h in (False, True)
             for k in (16, t.MAX_K) for half in (False, True)]:
        out.append({"kernel": "grouped", "METRIC": m, "HAS_MASK": h, "K": k, "BQ": g.BQ,
                    "BR": g.BR, "BD": g.BD, "HALF": half, "IEEE": False, "DECODE": 0,
                    "M": 1, "DSUB": 1})
    # the grouped kernel on IVF_SQ8 (DECODE 1) and IVF_PQ (DECODE 2: m = 16, dsub = 8) codes
    for dec, m, h, k in [(1, 0, True, 16), (2, 1, False, t.MAX_K)] if quick else \
            [(dec, m, h, k) for dec in (1, 2) for m in (0, 1) for h in (False, True)
             for k in (16, t.MAX_K)]:
        out.append({"kernel": "grouped", "METRIC": m, "HAS_MASK": h, "K": k, "BQ": g.BQ,
                    "BR": g.BR, "BD": g.BD, "HALF": False, "IEEE": False, "DECODE": dec,
                    "M": 16 if dec == 2 else 1, "DSUB": 8 if dec == 2 else 1})
    return out


def _resources(cubin: bytes) -> dict:
    import triton
    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as fh:
        fh.write(cubin)
        fh.flush()
        text = subprocess.run([str(tool), "--dump-resource-usage", fh.name], check=True,
                              capture_output=True, text=True).stdout
    found = dict(re.findall(r"(REG|STACK|SHARED|LOCAL):(\d+)", text))
    return {"registers": int(found["REG"]), "stack_bytes": int(found["STACK"]),
            "shared_bytes": int(found["SHARED"]), "local_bytes": int(found["LOCAL"])}


def _options(mod, warps: str, constexprs: dict) -> dict:
    """The compile options a launch of the variant passes (warps; the decoding grouped
    variants' register cap, which ptxas otherwise sets at 128 and spills under)."""
    opts = {"num_warps": getattr(mod, warps)}
    if constexprs.get("DECODE"):
        opts["maxnreg"] = mod.DECODE_MAXNREG
    return opts


def compile_variant(variant: dict, arch: int = 90) -> dict:
    import importlib

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    constexprs = {k: v for k, v in variant.items() if k != "kernel"}
    module, fn, signature, warps = KERNELS[variant["kernel"]]
    mod = importlib.import_module(f"kernels.{module}")
    kernel_fn = getattr(mod, fn)
    if constexprs.get("HALF"):  # float16 rows
        signature = dict(signature, x_ptr="*fp16")
    if constexprs.get("DECODE"):  # uint8 codes
        signature = dict(signature, x_ptr="*u8")
    sig = dict(signature, **{name: "constexpr" for name in constexprs})
    # what a launch specialises on: 16-byte aligned tensors, and d a multiple of 16
    attrs = {(i,): [["tt.divisibility", 16]] for i, (name, ty) in enumerate(signature.items())
             if ty.startswith("*") or name == "d"}
    src = ASTSource(fn=kernel_fn, signature=sig, constexprs=constexprs, attrs=attrs)
    kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                            options=_options(mod, warps, constexprs))
    return dict(variant, arch=arch, **_resources(kernel.asm["cubin"]))


def main(argv: list[str] | None = None) -> None:
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise SystemExit("unset TRITON_INTERPRET: the interpreter replaces compiled kernels")
    p = argparse.ArgumentParser(prog="python -m kernels.build_check")
    p.add_argument("--arch", type=int, default=90, help="compute capability x10 (90: Hopper)")
    p.add_argument("--quick", action="store_true",
                   help="a few variants of each kernel instead of all of them")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    rows = [compile_variant(v, args.arch) for v in variants(args.quick)]
    if args.json:
        print(json.dumps(rows))
        return
    for r in rows:
        print(" ".join(f"{k}={v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
