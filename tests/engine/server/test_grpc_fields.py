"""The audit of every served gRPC request (engine/server/grpc/fields.py): each field of each
request message is either read by Hotset or refused with 1100 naming it when set, so no
field a Milvus client sends is ignored. A field a newer protocol adds is refused until it is
listed."""
import pytest

pytest.importorskip("pymilvus", reason="the gRPC tests need pymilvus")

import grpc  # noqa: E402
from google.protobuf import message_factory  # noqa: E402
from google.protobuf.descriptor import FieldDescriptor as FD  # noqa: E402
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc  # noqa: E402

from engine import MilvusClient  # noqa: E402
from engine.server.grpc.fields import READ, unread  # noqa: E402
from engine.server.grpc.servicer import ROUTES  # noqa: E402
from engine.server.grpc.server import start_grpc  # noqa: E402

from ...conftest import basic_rows, basic_schema, index_params  # noqa: E402

SERVICE = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]


def request_class(rpc):
    return message_factory.GetMessageClass(SERVICE.methods_by_name[rpc].input_type)


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    c = MilvusClient(str(tmp_path_factory.mktemp("fields") / "d"), device="cpu")
    c.create_collection("ok", schema=basic_schema(), index_params=index_params())
    c.insert("ok", basic_rows(5))
    server, port = start_grpc(c, 0)
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield milvus_pb2_grpc.MilvusServiceStub(ch)
    ch.close()
    server.stop(0)
    c.close()


def _scalar(f):
    return {FD.CPPTYPE_STRING: "x", FD.CPPTYPE_BOOL: True, FD.CPPTYPE_ENUM: 1,
            FD.CPPTYPE_FLOAT: 1.0, FD.CPPTYPE_DOUBLE: 1.0}.get(f.cpp_type, 1)


def _set(req, f):
    """Give field ``f`` of ``req`` some non-default value."""
    value = getattr(req, f.name)
    is_map = f.message_type is not None and f.message_type.GetOptions().map_entry
    if is_map:
        vf = f.message_type.fields_by_name["value"]
        if vf.message_type is not None:
            value["k"].SetInParent()
        else:
            value["k"] = _scalar(vf)
    elif f.is_repeated:
        if f.message_type is not None:
            value.add()
        else:
            value.append(_scalar(f))
    elif f.message_type is not None:
        value.SetInParent()
    else:
        setattr(req, f.name, _scalar(f))


def test_every_served_rpc_has_an_audit_entry_naming_real_fields():
    assert set(READ) == set(ROUTES)
    for rpc, read in READ.items():
        names = {f.name for f in request_class(rpc).DESCRIPTOR.fields}
        assert set(read) <= names, (rpc, set(read) - names)


@pytest.mark.parametrize("rpc", sorted(ROUTES))
def test_each_unread_field_is_refused_by_name(stub, rpc):
    cls = request_class(rpc)
    for name in unread(rpc, cls):
        req = cls()
        if "collection_name" in cls.DESCRIPTOR.fields_by_name:
            req.collection_name = "ok"
        _set(req, cls.DESCRIPTOR.fields_by_name[name])
        resp = getattr(stub, rpc)(req, timeout=30)
        status = resp if isinstance(resp, common_pb2.Status) else resp.status
        assert status.code == 1100 and f".{name} is not supported" in status.reason, \
            (rpc, name, status)
