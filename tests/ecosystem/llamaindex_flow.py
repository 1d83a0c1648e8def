"""llama-index's MilvusVectorStore against a Hotset server: run inside the llama-index
environment with the server's URI as the only argument. Retrieval must bring every node's
metadata back, with and without metadata filters."""
from __future__ import annotations

import re
import sys

from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.vector_stores import ExactMatchFilter, MetadataFilters
from llama_index.vector_stores.milvus import MilvusVectorStore

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
print("llama-index ok")
