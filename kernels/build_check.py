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

_SIG = {"q_ptr": "*fp32", "x_ptr": "*fp32", "xsq_ptr": "*fp32", "off_ptr": "*i64",
        "probe_ptr": "*i64", "mask_ptr": "*i8", "out_ptr": "*i64", "nprobe": "i32",
        "d": "i32", "lo": "fp32", "hi": "fp32", "q_sq_ptr": "*fp32"}


def variants(quick: bool = False) -> list[dict]:
    """The specialisations a search can launch (metric, mask, K; split 1 and > 1); with
    ``quick``, four that between them take every branch of the kernel."""
    from . import triton_ivf as t
    if quick:
        picks = [(0, True, 16, 1), (1, False, t.MAX_K, 8), (2, True, t.MAX_K, 1),
                 (0, False, 16, 8)]
    else:
        picks = [(m, h, k, s) for m in (0, 1, 2) for h in (False, True)
                 for k in (16, t.MAX_K) for s in (1, 8)]
    return [{"METRIC": m, "HAS_MASK": h, "K": k, "SPLIT": s, "BLOCK": t.BLOCK,
             "BLOCK_D": t.BLOCK_D} for m, h, k, s in picks]


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


def compile_variant(constexprs: dict, arch: int = 90) -> dict:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from . import triton_ivf as t
    sig = dict(_SIG, **{name: "constexpr" for name in constexprs})
    # what a launch specialises on: 16-byte aligned tensors, and d a multiple of 16
    attrs = {(i,): [["tt.divisibility", 16]] for i, (name, ty) in enumerate(_SIG.items())
             if ty.startswith("*") or name == "d"}
    src = ASTSource(fn=t._ivf_scan_topk, signature=sig, constexprs=constexprs, attrs=attrs)
    kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                            options={"num_warps": t.NUM_WARPS})
    return dict(constexprs, arch=arch, **_resources(kernel.asm["cubin"]))


def main(argv: list[str] | None = None) -> None:
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise SystemExit("unset TRITON_INTERPRET: the interpreter replaces compiled kernels")
    p = argparse.ArgumentParser(prog="python -m kernels.build_check")
    p.add_argument("--arch", type=int, default=90, help="compute capability x10 (90: Hopper)")
    p.add_argument("--quick", action="store_true", help="four variants instead of all 24")
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
