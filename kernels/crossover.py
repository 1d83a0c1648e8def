"""Where the kernel dispatch switches from one scan to another, measured per device.

The per-pair scans (``triton_ivf``, ``triton_quant``) read a probed list once per query;
the list-grouped one (``triton_grouped``) once per tile of queries, at the cost of
grouping the pairs and of a tile's fixed work. Which wins depends on the queries a list
gets (batch x nprobe / nlist) and on the device. ``python -m bench kernels --crossover``
times both on the device and writes the smallest queries-a-list (IVF kinds) and batch
(FLAT: the grouped kernel against cuBLAS matmul + top-k) from which the grouped kernel is
the faster, under the device's name, to ``table_path()``: ``$HOTSET_KERNEL_TABLE``, else
``$XDG_CACHE_HOME/hotset/kernels.json`` (``~/.cache``). A process reads it once per
device, the first time it dispatches there (``thresholds``); devices not in it, or no
file, take ``DEFAULTS``. A file that is there but unreadable is an error that names it:
a search never runs on thresholds nobody chose.
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path

FORMAT = 1
# A list scanned for at least this many queries goes to the grouped kernel (IVF kinds);
# a FLAT batch of at least "flat" queries does. Until measured: below a tile's worth of
# queries a list, the grouped kernel reads as much as the per-pair one and pays its
# grouping; a FLAT scan fused with its top-k never writes the (queries, rows) distances
# cuBLAS + torch.topk write and read back.
DEFAULTS = {"ivf_flat": 16.0, "ivf_sq8": 16.0, "ivf_pq": 16.0, "flat": 1.0}


def table_path() -> Path:
    given = os.environ.get("HOTSET_KERNEL_TABLE")
    if given:
        return Path(given)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "hotset" / "kernels.json"


def _read(path: Path) -> dict:
    try:
        table = json.loads(path.read_text())
        if table.get("format") != FORMAT or not isinstance(table.get("devices"), dict):
            raise ValueError(f"not a format {FORMAT} kernel table")
        return table
    except (OSError, ValueError, AttributeError) as e:
        raise ValueError(f"kernel crossover table {path} cannot be read ({e}): rerun "
                         "`python -m bench kernels --crossover` on this machine, or remove "
                         "the file to use the defaults") from None


@functools.lru_cache(maxsize=None)
def thresholds(device_name: str) -> dict[str, float]:
    """The dispatch thresholds for a device (by its name): measured ones over
    ``DEFAULTS``."""
    path = table_path()
    if not path.exists():
        return dict(DEFAULTS)
    got = _read(path)["devices"].get(device_name, {})
    out = dict(DEFAULTS)
    for kind in DEFAULTS:
        v = got.get(kind)
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"kernel crossover table {path}: {device_name} {kind} = "
                                 f"{v!r} is not a non-negative number; rerun `python -m "
                                 "bench kernels --crossover`")
            out[kind] = float(v)
    return out


def save(device_name: str, measured: dict[str, float], about: dict) -> Path:
    """Write ``measured`` thresholds for a device into the table (other devices' entries
    kept), atomically."""
    path = table_path()
    table = _read(path) if path.exists() else {"format": FORMAT, "devices": {}}
    table["devices"][device_name] = {**measured, **about}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=1, sort_keys=True))
    tmp.replace(path)
    thresholds.cache_clear()
    return path


def describe(device_name: str) -> str:
    """One line: the thresholds a device searches with and where they come from (a bad
    table raises here, so a server started on one fails at startup, not mid-search)."""
    used = thresholds(device_name)
    path = table_path()
    measured = path.exists() and device_name in _read(path)["devices"]
    where = f"measured, from {path}" if measured else \
        f"defaults (no measurement for it in {path}: python -m bench kernels --crossover)"
    shown = ", ".join(f"{k} {v:g}" for k, v in used.items())
    return f"kernel crossover for {device_name}: grouped from {shown}; {where}"
