"""Milvus gRPC protocol (``milvus.proto.milvus.MilvusService``) over an embedded
MilvusClient, with the message classes that ship inside pymilvus (``pymilvus.grpc_gen``).
Only translation lives here: one module per family of RPCs, one table of status codes,
and the FieldData / placeholder / SearchResultData translators."""
