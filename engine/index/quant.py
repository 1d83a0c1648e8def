"""IVF_SQ8 and IVF_PQ: IVF lists whose rows are scanned from one-byte codes.

Both keep IVF_FLAT's coarse centroids and list order, and add a layout tensor ``codes``
per sealed segment (in list order, beside ``offsets`` in ``<stem>.sq8|pq.safetensors``):
- IVF_SQ8: ``d`` bytes a row, per-dimension 8-bit scalar quantisation trained on the
  sample (``kernels.quant``); the scan decodes in registers (Triton) or per list (torch);
- IVF_PQ (``m``, ``nbits`` = 8): ``m`` bytes a row, residual product quantisation with
  codebooks trained per subspace; scanned by asymmetric distance (lookup tables).
A load makes the codes resident (part ``<field>/codes``) instead of the rows, which is
the point: a collection several times larger than device memory as IVF_FLAT fits. The
rows themselves (``rows_place``):
- without refine, stay on disk; an ``output_fields`` that names the vector reads the hits'
  rows from their shard (``storage.segments.ShardRows``);
- with ``refine=True`` (Milvus's name), are kept in host memory (pinned on CUDA, listed in
  ``memory_info`` under ``host_parts``; on the CPU device host memory is the device's)
  and re-rank ``ceil(limit * refine_k)`` candidates by their exact distance, gathered per
  query batch.
COSINE rows are normalised before they are coded, and scanned as IP on unit queries.
Growing rows and segments sealed before training are scanned exactly, as IVF_FLAT does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
import torch

import kernels
from kernels import quant

from ..errors import ParamError
from .base import Tensors
from .ivf import DEFAULT_NLIST, DEFAULT_NPROBE, IvfFlat, _as_int, by_list, check_nprobe

REFINE_TYPES = {"FLOAT_VECTOR": "FP32", "FLOAT16_VECTOR": "FP16", "BFLOAT16_VECTOR": "BF16",
                "INT8_VECTOR": "INT8"}


@dataclass(frozen=True, slots=True)
class QuantProbe:
    """A query batch's probed lists, the resident trained parts the scan reads, and the
    refine factor (None: no refine)."""

    lists: torch.Tensor
    parts: Tensors
    refine_k: float | None


def _flag(params: dict, name: str) -> bool:
    v = params.get(name, False)
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    if not isinstance(v, bool):
        raise ParamError(f"{name} must be true or false, got {v!r}")
    return v


class QuantIvf(IvfFlat):
    """What IVF_SQ8 and IVF_PQ share: list order, codes, refine."""

    lazy_layout = True
    half_rows = False
    part_labels = {"offsets": "list_offsets", "codes": "codes"}

    def check_params(self, params: dict) -> dict:
        out = super().check_params(params)
        out["refine"] = _flag(params, "refine")
        if "refine_type" in params and not out["refine"]:
            raise ParamError("refine_type applies with refine=true: add refine=true or leave "
                             "refine_type out")
        return out

    def check_field(self, params: dict, dtype_name: str, dim: int) -> dict:
        own = REFINE_TYPES.get(dtype_name, "FP32")
        rt = params.get("refine_type")
        if rt is not None and str(rt).upper() != own:
            raise ParamError(f"refine_type {rt!r} is not supported on a {dtype_name} field: "
                             f"Hotset refines with the stored rows ({own}); leave "
                             "refine_type out or give that one")
        return params

    def rows_place(self, params: dict, ordered: bool) -> str:
        if not ordered:  # sealed before training: scanned exactly
            return "device"
        return "host" if params.get("refine") else "disk"

    def uses_norms(self, layout: Tensors | None) -> bool:
        return not layout

    def order(self, vectors, trained, metric, device, params=None):
        x = quant.unit_rows(vectors.to(device), metric)
        cent = trained["centroids"].to(device)
        lab = kernels.assign(x, cent, metric)
        perm, offsets = by_list(lab.cpu(), cent.shape[0])
        perm_d = perm.to(device)
        codes = self.encode(x[perm_d], lab[perm_d], trained, device)
        return perm, {"offsets": offsets, "codes": codes.cpu()}

    def encode(self, x: torch.Tensor, lists: torch.Tensor, trained: Tensors,
               device: torch.device) -> torch.Tensor:
        raise NotImplementedError

    def probe(self, queries, resident, build, search, metric):
        """Search params are checked first: refused even while the index is untrained
        and every segment is scanned exactly."""
        nprobe = check_nprobe(search, build.get("nlist", DEFAULT_NLIST),
                              build.get("nprobe", DEFAULT_NPROBE))
        refine_k = None
        if build.get("refine"):
            refine_k = search.get("refine_k", 1)
            if isinstance(refine_k, str):
                try:
                    refine_k = float(refine_k)
                except ValueError:
                    pass
            if isinstance(refine_k, bool) or not isinstance(refine_k, (int, float)) \
                    or not 1 <= refine_k <= 1024:
                raise ParamError(f"refine_k must be a number in [1, 1024], got {refine_k!r}")
        elif "refine_k" in search:
            raise ParamError(f"refine_k applies to an index built with refine=true; this "
                             f"{self.name} index has none: leave refine_k out")
        cent = resident.get("centroids")
        if cent is None:
            return None
        lists = kernels.coarse_probe(queries, cent, nprobe, metric,
                                     resident.get("centroid_norms"))
        return QuantProbe(lists, resident, refine_k)

    def scan(self, queries, x, layout, probe, limit, metric, mask, lo, hi, x_sq):
        if probe is None or not layout:
            return super().scan(queries, x, layout, None, limit, metric, mask, lo, hi, x_sq)
        if probe.refine_k is None:
            return self.scan_codes(queries, layout, probe, limit, metric, mask, lo, hi)
        wide = min(max(limit, math.ceil(limit * probe.refine_k)), 16384)
        _, cand = self.scan_codes(queries, layout, probe, wide, metric, mask, None, None)
        return kernels.refine(queries, x, cand, limit, metric, lo, hi)

    def scan_codes(self, queries, layout, probe, limit, metric, mask, lo, hi
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class IvfSq8(QuantIvf):
    """IVF_SQ8 on float, half-precision and int8 vector fields: ``d`` bytes a row."""

    name = "IVF_SQ8"
    layout_suffix = "sq8"

    def train(self, sample, params, metric, device) -> Tensors:
        x = quant.unit_rows(sample, metric)
        return {**super().train(sample, params, metric, device), **quant.sq8_train(x)}

    def encode(self, x, lists, trained, device):
        return quant.sq8_encode(x, trained["vmin"].to(device), trained["vdiff"].to(device))

    def resident_parts(self, trained: Tensors, device: torch.device) -> Tensors:
        return {**super().resident_parts(trained, device),
                "scale": trained["scale"].to(device), "base": trained["base"].to(device)}

    def resident_bytes(self, trained: Tensors) -> int:
        return super().resident_bytes(trained) + 2 * trained["scale"].numel() * 4

    def scan_codes(self, queries, layout, probe, limit, metric, mask, lo, hi):
        p = probe.parts
        return kernels.ivf_sq8_search(queries, layout["codes"], p["scale"], p["base"],
                                      layout["offsets"], probe.lists, limit, metric, mask,
                                      lo, hi)


class IvfPq(QuantIvf):
    """IVF_PQ on float, half-precision and int8 vector fields: ``m`` bytes a row."""

    name = "IVF_PQ"
    layout_suffix = "pq"

    def check_params(self, params: dict) -> dict:
        out = super().check_params(params)
        if "m" not in params:
            raise ParamError("IVF_PQ needs m, the number of sub-vectors (a divisor of the "
                             "vector's dim): add it to the index params")
        m = _as_int(params["m"])
        if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= 65536:
            raise ParamError(f"IVF_PQ m must be an integer in [1, 65536], got {m!r}")
        nbits = _as_int(params.get("nbits", 8))
        if nbits != 8:
            raise ParamError(f"IVF_PQ nbits {nbits!r} is not supported: Hotset codes each "
                             "sub-vector in one byte; leave nbits out or give 8")
        return {**out, "m": m, "nbits": 8}

    def check_field(self, params: dict, dtype_name: str, dim: int) -> dict:
        if dim % params["m"]:
            raise ParamError(f"The dimension of the vector (dim={dim}) should be a multiple "
                             f"of the number of subquantizers (m={params['m']}): pick an m "
                             "that divides it")
        return super().check_field(params, dtype_name, dim)

    def train_rows(self, params: dict) -> tuple[int, int]:
        fewest, sample = super().train_rows(params)
        return max(fewest, quant.KSUB), max(sample, 64 * quant.KSUB)

    def train(self, sample, params, metric, device) -> Tensors:
        trained = super().train(sample, params, metric, device)
        x = quant.unit_rows(sample.to(device), metric)
        cent = trained["centroids"].to(device)
        res = quant.residuals(x, cent, kernels.assign(x, cent, metric))
        return {**trained, "codebooks": quant.pq_train(res, params["m"]).cpu()}

    def encode(self, x, lists, trained, device):
        cb = trained["codebooks"].to(device)
        return quant.pq_encode(quant.residuals(x, trained["centroids"].to(device), lists), cb)

    def resident_parts(self, trained: Tensors, device: torch.device) -> Tensors:
        cb = trained["codebooks"].to(device)
        return {**super().resident_parts(trained, device), "codebooks": cb,
                "codebook_norms": (cb * cb).sum(-1)}

    def resident_bytes(self, trained: Tensors) -> int:
        cb = trained["codebooks"]
        return super().resident_bytes(trained) + (cb.numel() + cb.shape[0] * cb.shape[1]) * 4

    def scan_codes(self, queries, layout, probe, limit, metric, mask, lo, hi):
        p = probe.parts
        return kernels.ivf_pq_search(queries, layout["codes"], p["centroids"], p["codebooks"],
                                     layout["offsets"], probe.lists, limit, metric, mask, lo,
                                     hi, p["codebook_norms"])

