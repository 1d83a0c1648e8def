"""Collection properties (engine/properties.py): what is honoured is stored and described;
everything else is refused and changes nothing."""
from __future__ import annotations

import pytest

from engine.errors import ParamError

from ..conftest import basic_schema, index_params


def test_create_alter_drop(cpu_client):
    c = cpu_client
    c.create_collection("c", schema=basic_schema(), index_params=index_params(),
                        properties={"mmap.enabled": False})
    assert c.describe_collection("c")["properties"] == {"mmap.enabled": "false"}
    c.alter_collection_properties("c", {"collection.autocompaction.enabled": "False"})
    assert c.describe_collection("c")["properties"] == {
        "mmap.enabled": "false", "collection.autocompaction.enabled": "false"}
    c.drop_collection_properties("c", ["mmap.enabled"])
    assert c.describe_collection("c")["properties"] == {
        "collection.autocompaction.enabled": "false"}
    c.truncate_collection("c")  # properties stay
    assert c.describe_collection("c")["properties"] == {
        "collection.autocompaction.enabled": "false"}


@pytest.mark.parametrize("props,match", [
    ({"mmap.enabled": True}, "nothing is memory-mapped"),
    ({"collection.ttl.seconds": 60}, "do not expire"),
    ({"collection.insertRate.max.mb": 5}, "not supported"),
])
def test_refused(cpu_client, props, match):
    c = cpu_client
    with pytest.raises(ParamError, match=match):
        c.create_collection("x", schema=basic_schema(), index_params=index_params(),
                            properties=props)
    assert not c.has_collection("x")
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    with pytest.raises(ParamError, match=match):
        c.alter_collection_properties("c", props)
    assert c.describe_collection("c")["properties"] == {}
