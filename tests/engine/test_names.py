"""The one name rule (engine/names.py), on its own and through every embedded call that
takes a name: hostile names are 1100 and touch nothing on disk, inside or outside the data
directory."""
import pytest
from hypothesis import given, settings, strategies as st

from engine import MilvusClient
from engine.errors import MilvusException, ParamError
from engine.names import check_name

from ..conftest import basic_rows, basic_schema, index_params
from .hostile import HOSTILE, tree


@pytest.mark.parametrize("name", HOSTILE)
def test_rule_refuses_hostile_names(name):
    with pytest.raises(ParamError) as e:
        check_name("collection", name)
    assert e.value.code == 1100 and e.value.message.startswith("Invalid collection name: ")
    assert len(e.value.message) < 400 and "\x00" not in e.value.message and "\n" not in \
        e.value.message


def test_rule_words_as_milvus():
    with pytest.raises(ParamError, match="Invalid collection name: 12-s. the first character "
                                         "of a collection name must be an underscore or letter"):
        check_name("collection", "12-s")
    with pytest.raises(ParamError, match="collection name can only contain numbers, letters "
                                         "and underscores"):
        check_name("collection", "a-b")
    assert check_name("field", "_a1" + "b" * 252) == "_a1" + "b" * 252


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_rule_accepts_exactly_identifiers(text):
    ok = (0 < len(text) <= 255 and text.isascii() and (text[0].isalpha() or text[0] == "_")
          and all(ch.isalnum() or ch == "_" for ch in text))
    try:
        check_name("partition", text)
        assert ok
    except ParamError:
        assert not ok


def _calls(c, name):
    """Every embedded call that takes a user name, with ``name`` in that place."""
    def schema_with_field():
        s = basic_schema()
        s.add_field(name, __import__("engine").DataType.INT64)
        return s

    def index_named():
        p = MilvusClient.prepare_index_params()
        p.add_index("title", "INVERTED", index_name=name)
        return p

    return {
        "create_collection": lambda: c.create_collection(name, dimension=4),
        "create_collection(field)": lambda: c.create_collection("x", schema=schema_with_field()),
        "has_collection": lambda: c.has_collection(name),
        "describe_collection": lambda: c.describe_collection(name),
        "drop_collection": lambda: c.drop_collection(name),
        "load_collection": lambda: c.load_collection(name),
        "release_collection": lambda: c.release_collection(name),
        "insert": lambda: c.insert(name, basic_rows(1)),
        "create_partition": lambda: c.create_partition("ok", name),
        "has_partition": lambda: c.has_partition("ok", name),
        "drop_partition": lambda: c.drop_partition("ok", name),
        "load_partitions": lambda: c.load_partitions("ok", [name]),
        "release_partitions": lambda: c.release_partitions("ok", [name]),
        "insert(partition)": lambda: c.insert("ok", basic_rows(1), partition_name=name),
        "create_index": lambda: c.create_index("ok", index_named()),
        "describe_index": lambda: c.describe_index("ok", name),
        "drop_index": lambda: c.drop_index("ok", name),
    }


@pytest.mark.parametrize("name", HOSTILE)
def test_every_embedded_call_refuses_hostile_names(tmp_path, name):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.safetensors").write_bytes(b"keep")
    name = name.replace("{outside}", str(outside))
    c = MilvusClient(str(tmp_path / "data"), device="cpu")
    c.create_collection("ok", schema=basic_schema(), index_params=index_params())
    c.insert("ok", basic_rows(5))
    c.flush("ok")
    c.release_collection("ok")
    before = tree(tmp_path)
    calls = _calls(c, name)
    if name == "":  # "" means the default partition / the field's name, as in Milvus
        del calls["insert(partition)"], calls["create_index"]
    if name == "a/b":  # the shape of a default JSON-path index name: looked up, not found
        for what in ("describe_index", "drop_index"):
            with pytest.raises(MilvusException, match="index not found"):
                calls.pop(what)()
    for what, call in calls.items():
        with pytest.raises(ParamError) as e:
            call()
        assert e.value.code == 1100, what
    assert tree(tmp_path) == before
    assert c.list_collections() == ["ok"]
    c.close()


@pytest.mark.parametrize("word", ["and", "LIKE", "exists", "not", "In", "null", "true"])
def test_field_names_that_are_filter_keywords_are_refused(word):
    from engine import DataType

    s = MilvusClient.create_schema()
    with pytest.raises(ParamError, match=f"Invalid field name: {word}. {word} is a keyword"):
        s.add_field(word, DataType.INT64)
    assert check_name("collection", word) == word  # only field names are filtered on
