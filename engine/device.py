"""Device choice and capability detection. No silent fallbacks: asking for CUDA on a
machine without it is an error that says so."""
from __future__ import annotations

import torch

from .errors import ParamError


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> ``cuda:0`` if CUDA is usable, else ``cpu``; ``"cpu"``; ``"cuda[:N]"``."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ParamError(
                f"device {spec!r} was asked for but CUDA is not available "
                f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
                "use device='cpu' or 'auto', or install a CUDA build of torch")
        dev = torch.device(spec if ":" in spec else "cuda:0")
        if dev.index >= torch.cuda.device_count():
            raise ParamError(f"device {spec!r} does not exist: this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
        return dev
    raise ParamError(f"device {spec!r} is not understood; use 'auto', 'cpu' or 'cuda:N'")


def available_memory(device: torch.device) -> int:
    """Bytes the device has free now (CPU: MemAvailable from /proc/meminfo)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
