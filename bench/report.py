"""Result output: an aligned table, or one JSON line with ``--json``."""
from __future__ import annotations

import json
import platform
from typing import Any

import torch


def machine() -> dict:
    out = {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
           "threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def emit(name: str, rows: list[dict[str, Any]], as_json: bool, extra: dict | None = None) -> None:
    if as_json:
        print(json.dumps({"bench": name, "machine": machine(), "results": rows, **(extra or {})}))
        return
    if not rows:
        return
    cols = list(dict.fromkeys(c for r in rows for c in r))  # every row's columns, in order
    cells = [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)
