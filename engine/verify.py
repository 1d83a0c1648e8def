"""``python -m engine verify --data DIR``: check every file of a data directory against the
checksums written with it, and say what is damaged.

Read only: nothing is repaired, cut or removed (a torn WAL tail, which the next open cuts,
is reported as such, not as damage). Run it on a directory no server is writing to, or
files being written at that moment may be reported. Each problem names the collection, the
file and what is wrong; the exit status is 1 when anything is damaged.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from .catalog import read_catalog
from .storage.manifest import read_manifest
from .errors import StorageError
from .index.files import load_tensors, trained_path
from .storage.segments import read_arrow, read_deletes, read_tensor
from .storage.wal import records


@dataclass(frozen=True, slots=True)
class Problem:
    collection: str
    path: Path
    what: str


@dataclass(frozen=True, slots=True)
class Report:
    files: int
    problems: tuple[Problem, ...]
    notes: tuple[str, ...]


def verify(root: str | Path) -> Report:
    root = Path(root).expanduser().resolve()
    try:
        catalog = read_catalog(root)
    except StorageError as e:
        return Report(1, (Problem("(all)", Path(e.path), e.message),), ())
    checked, problems, notes = 1, [], []
    for name, cid in sorted(catalog["collections"].items()):
        folder = root / "collections" / f"{int(cid):08d}"
        n, found, note = _collection(name, folder)
        checked += n
        problems += found
        notes += note
    return Report(checked, tuple(problems), tuple(notes))


def _check(name: str, path: Path, problems: list, read) -> None:
    try:
        read()
    except Exception as e:  # noqa: BLE001 - OSError, ValueError, Arrow's and safetensors' own
        problems.append(Problem(name, path, f"{type(e).__name__}: {e}"))


def _collection(name: str, folder: Path) -> tuple[int, list[Problem], list[str]]:
    problems: list[Problem] = []
    try:
        m = read_manifest(folder)
    except (OSError, ValueError) as e:
        return 1, [Problem(name, folder / "manifest.json", f"{type(e).__name__}: {e}")], []
    checked = 1
    for d in m.indexes:
        if d.get("trained"):
            path = trained_path(folder, d["index_id"])
            _check(name, path, problems, lambda: load_tensors(path, d["checksum"]))
            checked += 1
    for f in m.delete_files:
        path = folder / "deletes" / f
        _check(name, path, problems, lambda: read_deletes(path, m.delete_sums[f]))
        checked += 1
    for s in m.segments:
        seg_dir = folder / "segments" / f"{s['id']:08d}"
        for file, sums in sorted(s["files"].items()):
            path = seg_dir / file
            checked += 1
            if file.endswith(".safetensors") and "header" not in sums:  # an index layout
                _check(name, path, problems, lambda: load_tensors(path, sums["file"]))
            elif file.endswith(".safetensors"):
                stem = file[:-len(".safetensors")]
                for key in (k for k in sums if k != "header"):
                    _check(name, path, problems,
                           lambda: read_tensor(seg_dir, stem, key, sums=sums))
            else:
                _check(name, path, problems,
                       lambda: read_arrow(seg_dir, file[:-len(".arrow")], sums))
    notes = []
    wal = folder / "wal.log"
    if wal.exists():
        checked += 1
        data = wal.read_bytes()
        end = 0

        def scan() -> None:
            nonlocal end
            for end, _ in records(data, wal):
                pass

        _check(name, wal, problems, scan)
        if end != len(data) and not any(p.path == wal for p in problems):
            notes.append(f"{name}: {wal} ends in a torn record of {len(data) - end} bytes "
                         "(a write that was never acknowledged); the next open cuts it")
    return checked, problems, notes


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help="check every file of a data directory against its "
                                      "checksums (read only)")
    p.add_argument("--data", default="./data")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if not (Path(args.data) / "collections").is_dir():
        print(f"{args.data} is not a Hotset data directory (no collections/ folder)")
        return 2
    report = verify(args.data)
    for note in report.notes:
        print(f"note: {note}")
    for p in report.problems:
        print(f"DAMAGED collection {p.collection}: {p.path}: {p.what}")
    status = "damaged" if report.problems else "intact"
    print(f"{report.files} files checked, {len(report.problems)} damaged: {status}")
    return 1 if report.problems else 0
