"""engine/keywords.py: the embedded client reads each keyword it is given, or refuses it
(1100 naming it); a timeout is refused; consistency levels are served strongly."""
import inspect

import numpy as np
import pytest

from engine import MilvusClient
from engine.client import FORWARDED, READS
from engine.errors import MilvusException

from ..conftest import make_loaded


def _refused(call, named):
    with pytest.raises(MilvusException) as e:
        call()
    assert e.value.code == 1100 and named in e.value.message, e.value.message


@pytest.mark.parametrize("kw,named", [
    ({"foo": 1}, "keyword foo"),
    ({"ray_worker": 2}, "keyword ray_worker"),           # a typo of ray_workers
    ({"secure": True}, "keyword secure"),                # pymilvus's connection keywords
    ({"user": "root", "password": "Milvus"}, "no users"),
    ({"token": "root:Milvus"}, "no users"),
    ({"timeout": 5}, "timeout=5"),
])
def test_the_constructor_refuses_what_it_does_not_read(tmp_path, kw, named):
    _refused(lambda: MilvusClient(str(tmp_path / "d"), device="cpu", **kw), named)
    assert not (tmp_path / "d").exists()                 # nothing created


def test_methods_refuse_keywords_they_do_not_read(cpu_client):
    c = cpu_client
    make_loaded(c, "c", n=40)
    q = np.zeros((1, 8), dtype=np.float32).tolist()
    _refused(lambda: c.load_collection("c", resource_groups=["rg"]), "keyword resource_groups")
    _refused(lambda: c.load_partitions("c", ["_default"], resource_group=["rg"]),
             "keyword resource_group")
    _refused(lambda: c.create_collection("d", dimension=4, num_shards=2), "keyword num_shards")
    assert not c.has_collection("d")
    _refused(lambda: c.search("c", data=q, limt=3), "keyword limt")
    _refused(lambda: c.query("c", filter="id < 3", output=["id"]), "keyword output")
    _refused(lambda: c.get("c", ids=[1], output_field=["id"]), "keyword output_field")
    _refused(lambda: c.delete("c", filter="id < 3", expr="id < 5"), "keyword expr")
    _refused(lambda: MilvusClient.create_schema(primary_field="id"), "keyword primary_field")
    _refused(lambda: c.release_collection("c", timeout=3), "timeout=3")
    _refused(lambda: c.release_collection("c", 3), "timeout=3")  # given by position
    _refused(lambda: c.list_collections(timeout=3), "keyword timeout")
    assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 40
    assert c.get_load_state("c")["state"].name == "Loaded"   # nothing above took effect


def test_what_methods_read_is_honoured(cpu_client):
    c = cpu_client
    make_loaded(c, "c", n=40)
    q = np.zeros((1, 8), dtype=np.float32).tolist()
    hits = c.search("c", data=q, limit=5, offset=2, consistency_level="Bounded",
                    timeout=None)
    assert len(hits[0]) == 5
    full = c.search("c", data=q, limit=7)
    assert [h["id"] for h in hits[0]] == [h["id"] for h in full[0]][2:]
    assert len(c.query("c", filter="id < 10", limit=3, consistency_level="Eventually")) == 3
    assert c.delete("c", pks=[1, 2])["delete_count"] == 2
    assert c.get("c", ids=[1, 3], consistency_level="Strong")[0]["id"] == 3


def test_every_method_taking_keywords_checks_them():
    """A method added with ``**kwargs`` is wrapped by ``checked`` (or hands its keywords to
    a function that checks them), so none can drop a keyword silently."""
    for name, attr in vars(MilvusClient).items():
        fn = attr.__func__ if isinstance(attr, staticmethod) else attr
        if not callable(fn) or name in FORWARDED:
            continue
        inner = inspect.unwrap(fn)
        if any(p.kind == p.VAR_KEYWORD for p in inspect.signature(inner).parameters.values()):
            assert fn is not inner, f"{name} takes **kwargs unchecked"
    assert set(READS) <= set(vars(MilvusClient))
