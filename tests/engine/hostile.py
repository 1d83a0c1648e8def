"""Hostile names, and a snapshot of a directory tree to prove nothing changed."""
from pathlib import Path

HOSTILE = [
    "{outside}/victim",          # an absolute path ({outside} is filled in by the test)
    "../../outside/victim",
    "..",
    "a/b",
    "a\x00b",
    "abc\n",
    "abc\r",
    "\nabc",
    "a" * 10_000,
    "a" * 256,
    "",
    " abc",
    "abc ",
    "ａｂｃ",                    # full-width letters
    "аbc",                       # Cyrillic a
    "ab\u200bc",                 # zero-width space
    "12-s",
    "a.b",
]


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and folder under ``root``; the lock file is skipped."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        if p.name == ".lock":
            continue
        out[str(p.relative_to(root))] = p.read_bytes() if p.is_file() else None
    return out
