"""langchain-milvus against a Hotset server: run inside the langchain environment with the
server's URI as the only argument; exits non-zero (an assertion) on any difference from
what a Milvus server gives. It ends with a dense + sparse hybrid store (two embeddings).
"""
from __future__ import annotations

import sys

from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_milvus import Milvus
from langchain_milvus.utils.sparse import BaseSparseEmbedding
from words import words  # tests/ecosystem/words.py, beside this script

uri = sys.argv[1]
emb = DeterministicFakeEmbedding(size=16)
store = Milvus(embedding_function=emb, connection_args={"uri": uri},
               collection_name="lc_docs", auto_id=True, drop_old=True)
texts = [f"document number {i} about {'cats' if i % 2 else 'dogs'}" for i in range(20)]
metas = [{"kind": "cats" if i % 2 else "dogs", "n": i} for i in range(20)]
ids = store.add_texts(texts, metadatas=metas)
assert len(ids) == 20, ids

# the same text embeds to the same vector: it is its own nearest neighbour
hits = store.similarity_search_with_score(texts[7], k=3)
assert hits[0][0].page_content == texts[7], hits
assert hits[0][0].metadata["n"] == 7 and hits[0][0].metadata["kind"] == "cats", hits[0]
assert len(hits) == 3 and all(isinstance(s, float) for _, s in hits)

filtered = store.similarity_search_with_score(texts[7], k=5, expr='kind == "dogs"')
assert filtered and all(d.metadata["kind"] == "dogs" for d, _ in filtered), filtered
assert texts[7] not in [d.page_content for d, _ in filtered]

mmr = store.max_marginal_relevance_search(texts[3], k=4, fetch_k=10)
assert len(mmr) == 4 and mmr[0].page_content == texts[3], mmr

retrieved = store.as_retriever(search_kwargs={"k": 2}).invoke(texts[12])
assert isinstance(retrieved[0], Document) and retrieved[0].page_content == texts[12]

store.delete(ids=[ids[7]])
after = store.similarity_search_with_score(texts[7], k=20)
assert texts[7] not in [d.page_content for d, _ in after] and len(after) == 19, after
store.delete(expr='kind == "dogs"')
rest = store.similarity_search(texts[1], k=20)
assert len(rest) == 9 and all(d.metadata["kind"] == "cats" for d in rest), rest


# dense + sparse hybrid: two vector fields, each with its embedding, fused on the server
class Words(BaseSparseEmbedding):
    """A text's words, each one dimension (a stable hash), weighted by its count."""

    def _encode(self, text: str) -> dict[int, float]:
        return words(text)

    def embed_query(self, query: str) -> dict[int, float]:
        return self._encode(query)

    def embed_documents(self, texts: list[str]) -> list[dict[int, float]]:
        return [self._encode(t) for t in texts]


both = Milvus(embedding_function=[emb, Words()], vector_field=["dense", "sparse"],
              connection_args={"uri": uri}, collection_name="lc_hybrid", auto_id=True,
              drop_old=True)
notes = ["red kiwi salad", "green plum jam", "blue kiwi tart", "yellow lime pie"]
both.add_texts(notes, metadatas=[{"n": i} for i in range(4)])
fused = both.similarity_search(notes[3], k=2, ranker_type="rrf", ranker_params={"k": 60})
assert fused[0].page_content == notes[3], fused  # first by both embeddings
words_only = both.similarity_search("kiwi", k=4, ranker_type="weighted",
                                    ranker_params={"weights": [0.0, 1.0]})
assert {d.metadata["n"] for d in words_only[:2]} == {0, 2}, words_only
print("langchain ok")
