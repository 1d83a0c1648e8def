"""llama-index's MilvusVectorStore against a Hotset server: run inside the llama-index
environment with the server's URI as the only argument. Retrieval must bring every node's
metadata back, with and without metadata filters, and a store with enable_sparse=True
must search its sparse field alone and fused with the dense one."""
from __future__ import annotations

import re
import sys

from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.vector_stores import ExactMatchFilter, MetadataFilters
from llama_index.vector_stores.milvus import MilvusVectorStore
from llama_index.vector_stores.milvus.utils import BaseSparseEmbeddingFunction
from words import words  # tests/ecosystem/words.py, beside this script

uri = sys.argv[1]
DIM = 16


class Hashed(MockEmbedding):
    """Deterministic: the vector of a text that names ``note N`` is the N-th unit vector
    (whatever metadata llama-index prepends to what it embeds), so a note's own text finds
    it first."""

    def _vector(self, text: str) -> list[float]:
        v = [0.0] * DIM
        m = re.search(r"note (\d+)", text)
        v[int(m.group(1)) % DIM if m else DIM - 1] = 1.0
        return v

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)


store = MilvusVectorStore(uri=uri, dim=DIM, collection_name="li_docs", overwrite=True)
docs = [Document(text=f"note {i}: {'apples' if i % 3 == 0 else 'pears'} and more {i}",
                 metadata={"fruit": "apple" if i % 3 == 0 else "pear", "i": i})
        for i in range(12)]
index = VectorStoreIndex.from_documents(
    docs, storage_context=StorageContext.from_defaults(vector_store=store),
    embed_model=Hashed(embed_dim=DIM))

nodes = index.as_retriever(similarity_top_k=3).retrieve(docs[4].text)
assert nodes[0].node.metadata == {"fruit": "pear", "i": 4}, nodes[0].node.metadata
assert all(n.node.metadata.get("fruit") in ("apple", "pear") for n in nodes), nodes

only = MetadataFilters(filters=[ExactMatchFilter(key="fruit", value="apple")])
nodes = index.as_retriever(similarity_top_k=10, filters=only).retrieve(docs[4].text)
assert len(nodes) == 4, [n.node.metadata for n in nodes]
assert {n.node.metadata["i"] for n in nodes} == {0, 3, 6, 9}
assert all(n.node.text.startswith("note") for n in nodes)

# enable_sparse=True with a sparse embedding of one's own (the default, BM25, is a
# Milvus function Hotset refuses): SPARSE mode searches the sparse field alone, HYBRID
# fuses it with the dense one.
class Words(BaseSparseEmbeddingFunction):
    """A text's words, each one dimension (a stable hash), weighted by its count."""

    def _encode(self, text: str) -> dict[int, float]:
        return words(text)

    def encode_queries(self, queries: list[str]) -> list[dict[int, float]]:
        return [self._encode(q) for q in queries]

    def encode_documents(self, documents: list[str]) -> list[dict[int, float]]:
        return [self._encode(d) for d in documents]


hybrid = MilvusVectorStore(uri=uri, dim=DIM, collection_name="li_hybrid", overwrite=True,
                           enable_sparse=True, sparse_embedding_function=Words(),
                           hybrid_ranker="RRFRanker", hybrid_ranker_params={"k": 60})
notes = [Document(text=f"note {i}: {w}", metadata={"i": i})
         for i, w in enumerate(["red kiwi", "green plum", "blue kiwi", "yellow lime"])]
h_index = VectorStoreIndex.from_documents(
    notes, storage_context=StorageContext.from_defaults(vector_store=hybrid),
    embed_model=Hashed(embed_dim=DIM))
got = h_index.as_retriever(vector_store_query_mode="sparse",
                           similarity_top_k=4).retrieve("kiwi")
assert {n.node.metadata["i"] for n in got} == {0, 2}, [n.node.metadata for n in got]
got = h_index.as_retriever(vector_store_query_mode="hybrid",
                           similarity_top_k=2).retrieve("note 3 lime")
assert got[0].node.metadata["i"] == 3, [n.node.metadata for n in got]
print("llama-index ok")
