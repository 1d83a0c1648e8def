import pytest

from engine import DataType, MilvusClient
from engine.errors import ParamError
from engine.schema import CollectionSchema, FieldSchema


def test_datatype_values_match_milvus():
    assert DataType.INT64 == 5 and DataType.VARCHAR == 21 and DataType.FLOAT_VECTOR == 101
    assert DataType.BFLOAT16_VECTOR == 103 and DataType.JSON == 23 and DataType.ARRAY == 22


def test_add_field_chains_and_round_trips():
    s = MilvusClient.create_schema(auto_id=True, enable_dynamic_field=True)
    out = (s.add_field("pk", DataType.INT64, is_primary=True)
            .add_field("v", DataType.FLOAT16_VECTOR, dim=4)
            .add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=3,
                       max_length=5)
            .add_field("n", DataType.INT8, nullable=True)
            .add_field("d", DataType.FLOAT, default_value=1.5))
    assert out is s
    s.validate()
    again = CollectionSchema.from_dict(s.to_dict())
    assert again == s and again.primary.name == "pk" and again.auto_id


@pytest.mark.parametrize("build, fragment", [
    (lambda s: s.add_field("v", DataType.FLOAT_VECTOR), "dim"),
    (lambda s: s.add_field("s", DataType.VARCHAR), "max_length"),
    (lambda s: s.add_field("a", DataType.ARRAY, element_type=DataType.JSON, max_capacity=2),
     "element_type"),
    (lambda s: s.add_field("a", DataType.ARRAY, element_type=DataType.INT8), "max_capacity"),
    (lambda s: s.add_field("1bad", DataType.INT8), "invalid"),
    (lambda s: s.add_field("p", DataType.FLOAT, is_primary=True), "primary key"),
    (lambda s: s.add_field("v", DataType.FLOAT_VECTOR, dim=4, default_value=[0] * 4),
     "default value"),
    (lambda s: s.add_field("x", DataType.SPARSE_FLOAT_VECTOR, dim=8), "no dim"),
    (lambda s: s.add_field("x", DataType.BINARY_VECTOR, dim=12), "multiple of 8"),
])
def test_bad_fields_are_1100(build, fragment):
    s = MilvusClient.create_schema()
    with pytest.raises(ParamError) as e:
        build(s)
    assert e.value.code == 1100 and fragment in e.value.message


def test_duplicate_field_names_rejected():
    s = MilvusClient.create_schema()
    s.add_field("a", DataType.INT64, is_primary=True)
    with pytest.raises(ParamError, match="duplicated field name"):
        s.add_field("a", DataType.FLOAT)


def test_schema_level_rules():
    s = MilvusClient.create_schema()
    s.add_field("a", DataType.INT64, is_primary=True)
    with pytest.raises(ParamError, match="no vector field"):
        s.validate()
    s2 = MilvusClient.create_schema(auto_id=True)
    s2.add_field("a", DataType.VARCHAR, is_primary=True, max_length=4)
    s2.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    with pytest.raises(ParamError, match="set max_length to at least 19"):
        s2.validate()  # an auto_id VARCHAR key is an int64's text
    s3 = MilvusClient.create_schema()
    s3.add_field("a", DataType.INT64, is_primary=True)
    s3.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s3.add_field("n", DataType.INT8, default_value=1000)
    with pytest.raises(ParamError, match="default_value"):
        s3.validate()


def test_field_schema_is_frozen():
    f = FieldSchema("a", DataType.INT64)
    with pytest.raises(AttributeError):
        f.name = "b"


def test_auto_id_on_a_varchar_key(cpu_client):
    """Keys are an int64's decimal text, as Milvus makes them; an upsert of a generated key
    replaces that row under a new key, as for INT64."""
    c = cpu_client
    s = c.create_schema(auto_id=True)
    s.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=32)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    p = c.prepare_index_params()
    p.add_index("v", "FLAT", metric_type="L2")
    c.create_collection("c", schema=s, index_params=p)
    ids = c.insert("c", [{"v": [1, 2]}, {"v": [3, 4]}])["ids"]
    assert all(isinstance(k, str) and k.isdigit() for k in ids) and len(set(ids)) == 2
    with pytest.raises(Exception, match="auto_id"):
        c.insert("c", [{"pk": "mine", "v": [0, 0]}])
    new = c.upsert("c", [{"pk": ids[0], "v": [9, 9]}])["ids"]
    assert new[0] not in ids
    c.flush("c")
    c.release_collection("c")
    c.load_collection("c")
    got = {r["pk"]: r["v"] for r in c.query("c", "pk != ''", output_fields=["v"])}
    assert got == {ids[1]: [3.0, 4.0], new[0]: [9.0, 9.0]}



def test_partition_key_is_kept_and_partitions_are_its(cpu_client):
    """``is_partition_key`` was once accepted and dropped: it is described now, and, as in
    Milvus, partitions cannot be named by hand on such a collection."""
    c = cpu_client
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("tenant", DataType.VARCHAR, max_length=16, is_partition_key=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    with pytest.raises(ParamError, match="at most one partition key"):
        s.add_field("t2", DataType.INT64, is_partition_key=True)
    with pytest.raises(ParamError, match="partition key must be"):
        c.create_schema().add_field("f", DataType.FLOAT, is_partition_key=True)
    p = c.prepare_index_params()
    p.add_index("v", "FLAT", metric_type="L2")
    c.create_collection("c", schema=s, index_params=p)
    fields = {f["name"]: f for f in c.describe_collection("c")["fields"]}
    assert fields["tenant"]["is_partition_key"] and "is_partition_key" not in fields["id"]
    c.insert("c", [{"id": 1, "tenant": "a", "v": [0, 0]}, {"id": 2, "tenant": "b", "v": [1, 0]}])
    assert [h["id"] for h in c.search("c", [[0, 0]], limit=5, filter="tenant == 'b'")[0]] == [2]
    with pytest.raises(ParamError, match="disable create partition"):
        c.create_partition("c", "p1")
    with pytest.raises(ParamError, match="manually specifying the partition names"):
        c.insert("c", [{"id": 3, "tenant": "a", "v": [0, 1]}], partition_name="_default")
    c.release_collection("c")
    c.load_collection("c")  # the flag survives the manifest
    assert c.collection_schema("c").partition_key.name == "tenant"
