"""The vector index protocol: what the engine asks of an index type.

An index type is a stateless object registered under its Milvus name (``registry.py``).
Its state lives elsewhere, as named tensors:
- **trained parts**, per collection (IVF: the centroids): made by ``train`` from a
  sample, stored in ``index/<index id>.safetensors``, made resident by
  ``resident_parts``;
- a **layout**, per sealed segment (IVF: the list offsets): ``order`` gives the
  permutation the segment's rows are stored in and the tensors that describe that order,
  stored beside the segment's shards (``<stem>.<layout_suffix>.safetensors``).
Searching is ``probe`` once per query batch (on the resident trained parts), then
``scan`` per segment (on its vectors and resident layout). An index without training
and layout (FLAT) returns nothing from the first three and scans exactly.

Adding an index type: a module here implementing :class:`VectorIndex`, its kernels in
``kernels/``, and one ``register`` line in ``registry.py``.
"""
from __future__ import annotations

from typing import Any

import torch

Tensors = dict[str, torch.Tensor]


class VectorIndex:
    name: str = ""
    kind = "dense"          # the fields it serves: "dense", "binary" or "sparse" vectors
    builds_layout = False   # its layout is built from a segment's rows when they are made
                            # resident (``build_layout``), not stored
    trains = False          # needs trained parts before its layout can be made
    layout_suffix = ""      # file suffix of a segment's layout ("" = no layout)
    part_labels: dict[str, str] = {}  # layout tensor -> its part name in memory_info
    lazy_layout = False     # the layout stays on disk until a load reads it (a graph)
    half_rows = False       # takes resident_dtype="float16" (float rows scanned in halves)

    def check_params(self, params: dict) -> dict:
        """Build parameters, validated and normalised (ParamError if wrong)."""
        return dict(params)

    def check_field(self, params: dict, dtype_name: str, dim: int) -> dict:
        """``check_params``'s result checked against the field it indexes (its DataType
        name and dim); ParamError if they do not go together."""
        return params

    def rows_place(self, params: dict, ordered: bool) -> str:
        """Where a load keeps a sealed segment's rows of the field (``ordered``: the
        segment is laid out in this index's order): "device" (they are scanned), "half"
        (scanned as float16 on the device, ``resident_dtype``; reads take the stored rows
        from the shard), "host" (host memory: they only re-rank) or "disk" (the index scans
        codes of its own; the rows are read from their shard when a read returns them)."""
        return "half" if self.half_rows and params.get("resident_dtype") == "float16" \
            else "device"

    def uses_norms(self, layout: Tensors | None) -> bool:
        """Whether ``scan`` of a segment with this layout takes its rows' squared norms."""
        return True

    def train_rows(self, params: dict) -> tuple[int, int]:
        """(fewest rows training needs, rows in the sample it trains on)."""
        return 0, 0

    def train(self, sample: torch.Tensor, params: dict, metric: str,
              device: torch.device) -> Tensors:
        """Trained parts (host tensors) from a sample of vectors."""
        return {}

    def order(self, vectors: torch.Tensor, trained: Tensors, metric: str,
              device: torch.device, params: dict | None = None
              ) -> tuple[torch.Tensor, Tensors] | None:
        """The permutation to store a segment's rows in and its layout tensors (built with
        the index's ``params``), or None when the index keeps rows in arrival order."""
        return None

    def build_layout(self, column: Any, params: dict, device: torch.device) -> Tensors:
        """A segment's layout built from its resident rows of the field (``builds_layout``
        index types: the sparse postings)."""
        return {}

    def resident_layout(self, layout: dict, column: Any, metric: str,
                        device: torch.device) -> dict:
        """What a load keeps resident of a segment's layout (already on ``device``), given
        the segment's resident rows: the layout itself unless the index searches another
        form of it (HNSW on the CPU: faiss's index)."""
        return layout

    def resident_parts(self, trained: Tensors, device: torch.device) -> Tensors:
        """The tensors a load puts on ``device`` for the trained parts."""
        return {}

    def resident_bytes(self, trained: Tensors) -> int:
        """Bytes ``resident_parts`` will take (the load plan counts them up front)."""
        return 0

    def probe(self, queries: torch.Tensor, resident: Tensors, build: dict,
              search: dict, metric: str) -> Any:
        """Per-query-batch state for ``scan`` (IVF: the lists to probe); None when no
        trained part is resident."""
        return None

    def scan(self, queries: torch.Tensor, x: torch.Tensor, layout: Tensors | None, probe: Any,
             limit: int, metric: str, mask: torch.Tensor | None, lo: float | None,
             hi: float | None, x_sq: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(nq, k) internal distances (smaller is better) and row indices of one segment.
        A segment without a layout (sealed before training, or growing) is scanned
        exactly."""
        import kernels

        return kernels.flat_search(queries, x, limit, metric, mask, lo, hi, x_sq)
