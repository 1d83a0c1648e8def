"""The Milvus RESTful v2 server: a Starlette app that only translates.

Every endpoint is ``POST /v2/vectordb/<group>/<verb>`` with a JSON body and answers HTTP 200
with ``{"code": 0, "data": ...}`` or ``{"code": <Milvus code>, "message": ...}``; HTTP 401
only for a missing or wrong token. Bodies are validated with pydantic (``models.py``):
malformed JSON is 1801, a missing required key 1802, rows that do not fit the schema 1804;
none of them reaches the engine. Engine calls run in worker threads; the engine's own lock
keeps every request from seeing a half-loaded or half-released collection.
"""
from __future__ import annotations

import contextlib
import json
import logging
from typing import Any, Callable

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ...client import MilvusClient
from ...errors import DataError, MilvusException
from ...names import shown
from . import models as m
from .translate import (add_field, create_collection, describe_collection, describe_index,
                        hybrid_search, index_params, load_state, search)

log = logging.getLogger("hotset.rest")
DEFAULT_MAX_BODY = 64 << 20
PREFIX = "/v2/vectordb/"


class _Json(JSONResponse):
    """JSON with a binary vector (bytes) written as its list of byte values."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                          default=_bytes_as_list).encode("utf-8")


def _bytes_as_list(o: Any) -> Any:
    if isinstance(o, (bytes, bytearray)):
        return list(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _ok(data: Any) -> JSONResponse:
    return _Json({"code": 0, "data": data})


def _err(code: int, message: str, status: int = 200) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


# Each handler takes the client of the body's database (dbName) and the body; the
# databases/* handlers act on the database dbName names, with the server's own client.
Handler = Callable[[MilvusClient, Any], Any]
ON_DATABASES = {"databases/create", "databases/drop", "databases/list", "databases/describe",
                "databases/alter", "databases/drop_properties"}
HANDLERS: dict[str, tuple[type[BaseModel], Handler]] = {
    "collections/create": (m.CreateCollection, lambda c, b: create_collection(c, b) or {}),
    "collections/describe": (m.Named, lambda c, b: describe_collection(c, b.collection_name)),
    "collections/list": (m._Body, lambda c, b: c.list_collections()),
    "collections/has": (m.Named, lambda c, b: {"has": c.has_collection(b.collection_name)}),
    "collections/drop": (m.Named, lambda c, b: c.drop_collection(b.collection_name) or {}),
    "collections/get_stats": (m.Named, lambda c, b: {
        "rowCount": c.get_collection_stats(b.collection_name)["row_count"]}),
    "collections/load": (m.Load, lambda c, b: c.load_collection(
        b.collection_name, replica_number=b.replica_number, load_fields=b.load_fields,
        skip_load_dynamic_field=b.skip_load_dynamic_field) or {}),
    "collections/release": (m.Named, lambda c, b: c.release_collection(b.collection_name) or {}),
    "collections/refresh_load": (m.Named, lambda c, b: c.refresh_load(b.collection_name) or {}),
    "collections/get_load_state": (m.LoadState, lambda c, b: load_state(c, b)),
    "entities/insert": (m.Insert, lambda c, b: _insert(c, b, c.insert, "insert")),
    "entities/upsert": (m.Insert, lambda c, b: _insert(c, b, c.upsert, "upsert")),
    "entities/delete": (m.Delete, lambda c, b: {"deleteCount": c.delete(
        b.collection_name, ids=b.ids, filter=b.filter or None,
        partition_name=b.partition_name or None)["delete_count"]}),
    "entities/search": (m.Search, lambda c, b: search(c, b)),
    "entities/hybrid_search": (m.HybridSearch, lambda c, b: hybrid_search(c, b)),
    "entities/query": (m.Query, lambda c, b: c.query(
        b.collection_name, b.filter, output_fields=b.output_fields, limit=b.limit,
        offset=b.offset, partition_names=b.partition_names)),
    "entities/get": (m.Get, lambda c, b: c.get(
        b.collection_name, b.id if isinstance(b.id, list) else [b.id],
        output_fields=b.output_fields, partition_names=b.partition_names)),
    "indexes/create": (m.CreateIndex, lambda c, b: c.create_index(
        b.collection_name, index_params(b.index_params)) or {}),
    "indexes/list": (m.ListIndexes, lambda c, b: c.list_indexes(b.collection_name, b.field_name)),
    "indexes/describe": (m.IndexNamed, lambda c, b: describe_index(c, b)),
    "indexes/drop": (m.IndexNamed, lambda c, b: c.drop_index(b.collection_name, b.index_name)
                     or {}),
    "partitions/create": (m.Partition, lambda c, b: c.create_partition(
        b.collection_name, b.partition_name) or {}),
    "partitions/list": (m.Named, lambda c, b: c.list_partitions(b.collection_name)),
    "partitions/has": (m.Partition, lambda c, b: {"has": c.has_partition(
        b.collection_name, b.partition_name)}),
    "partitions/drop": (m.Partition, lambda c, b: c.drop_partition(
        b.collection_name, b.partition_name) or {}),
    "partitions/load": (m.Partitions, lambda c, b: c.load_partitions(
        b.collection_name, b.partition_names) or {}),
    "partitions/release": (m.Partitions, lambda c, b: c.release_partitions(
        b.collection_name, b.partition_names) or {}),
    "collections/rename": (m.Rename, lambda c, b: c.rename_collection(
        b.collection_name, b.new_collection_name, b.new_db_name) or {}),
    "aliases/create": (m.AliasOf, lambda c, b: c.create_alias(
        b.collection_name, b.alias_name) or {}),
    "aliases/alter": (m.AliasOf, lambda c, b: c.alter_alias(
        b.collection_name, b.alias_name) or {}),
    "aliases/drop": (m.Alias, lambda c, b: c.drop_alias(b.alias_name) or {}),
    "aliases/describe": (m.Alias, lambda c, b: _alias(c.describe_alias(b.alias_name))),
    "aliases/list": (m.AliasList, lambda c, b: c.list_aliases(b.collection_name)["aliases"]),
    "collections/fields/add": (m.AddField, lambda c, b: add_field(c, b) or {}),
    "collections/alter_properties": (m.Properties, lambda c, b: c.alter_collection_properties(
        b.collection_name, b.properties) or {}),
    "collections/drop_properties": (m.PropertyKeys, lambda c, b: c.drop_collection_properties(
        b.collection_name, b.property_keys) or {}),
    "partitions/get_stats": (m.Partition, lambda c, b: {"rowCount": c.get_partition_stats(
        b.collection_name, b.partition_name)["row_count"]}),
    "databases/create": (m.Database, lambda c, b: c.create_database(
    b.db_name, b.properties) or {}),
    "databases/drop": (m.Database, lambda c, b: c.drop_database(b.db_name) or {}),
    "databases/list": (m._Body, lambda c, b: c.list_databases()),
    "databases/describe": (m.Database, lambda c, b: _database(c.describe_database(
    b.db_name or "default"))),
    "databases/alter": (m.Database, lambda c, b: c.alter_database_properties(
    b.db_name, b.properties) or {}),
    "databases/drop_properties": (m.DatabaseKeys, lambda c, b: c.drop_database_properties(
    b.db_name, b.property_keys) or {}),
}


def _database(d: dict) -> dict:
    return {"dbName": d["name"], "properties": [{"key": k, "value": v} for k, v in d.items()
                                             if k != "name"]}


def _alias(d: dict) -> dict:
    return {"aliasName": d["alias"], "collectionName": d["collection_name"],
            "dbName": d["db_name"]}


def _insert(c: MilvusClient, b: m.Insert, fn: Callable, verb: str) -> dict:
    try:
        res = fn(b.collection_name, b.data, partition_name=b.partition_name)
    except DataError as e:
        raise MilvusException(f"fail to deal the insert data, error: {e.message}",
                              code=1804) from None
    return {f"{verb}Count": res[f"{verb}_count"], f"{verb}Ids": res["ids"]}


def _validation_error(e: ValidationError) -> JSONResponse:
    errors = e.errors(include_url=False, include_input=False)
    for err in errors:
        if err["type"] == "missing":
            name = shown(".".join(str(p) for p in err["loc"]))
            return _err(1802, f"missing required parameter: {name}")
    for err in errors:
        if err["type"] == "extra_forbidden":
            name = shown(".".join(str(p) for p in err["loc"]))
            return _err(1100, f"parameter {name} is not supported by Hotset: leave it out "
                              "(see the compatibility table in Hotset's README)")
    first = errors[0]
    name = shown(".".join(str(p) for p in first["loc"]))
    return _err(1100, f"invalid parameter {name}: {first['msg']}")


def create_app(client: MilvusClient, token: str | None = None,
               max_body: int = DEFAULT_MAX_BODY,
               before_close: Callable[[], None] | None = None) -> Starlette:
    """``before_close`` runs at shutdown before the client is closed (stops gRPC)."""
    expected = f"Bearer {token}" if token else None

    async def endpoint(request: Request) -> JSONResponse:
        if expected is not None and request.headers.get("authorization") != expected:
            return _err(1800, "user hasn't authenticated", status=401)
        key = request.url.path.removeprefix(PREFIX)
        model, handler = HANDLERS[key]
        try:
            size = int(request.headers.get("content-length") or 0)
        except ValueError:
            return _err(1801, "Content-Length is not a number")
        if size > max_body:
            return _err(1801, f"request body of {size} bytes is larger than the server's limit "
                              f"of {max_body} bytes: send smaller batches or raise --max-body")
        raw = await request.body()
        if len(raw) > max_body:
            return _err(1801, f"request body is larger than the server's limit of {max_body} "
                              "bytes: send smaller batches or raise --max-body")
        try:
            payload = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return _err(1801, f"request body is not valid JSON: {e}")
        except RecursionError:
            return _err(1801, "request body nests objects or arrays too deep to parse")
        if not isinstance(payload, dict):
            return _err(1801, "request body must be a JSON object")
        try:
            body = model.model_validate(payload)
        except ValidationError as e:
            return _validation_error(e)
        except RecursionError:
            return _err(1100, "request body nests objects or arrays too deep")
        try:
            c = client if key in ON_DATABASES else client.in_database(body.db_name)
            data = await run_in_threadpool(handler, c, body)
        except MilvusException as e:
            return _err(e.code, e.message)
        except Exception:  # noqa: BLE001 - a bug: logged, answered without its text
            log.exception("%s failed", key)
            return _err(65535, f"internal error while serving {key}: the server log has "
                               "the details; please report it")
        try:
            return _ok(data)
        except (TypeError, ValueError):  # not JSON-serialisable: also a bug
            log.exception("%s: the answer could not be encoded", key)
            return _err(65535, f"internal error while answering {key}: the server log has "
                               "the details; please report it")

    async def unknown(request: Request) -> JSONResponse:
        return _err(1100, f"unknown endpoint {request.url.path}: see the Milvus RESTful v2 API",
                    status=404)

    dispatch = _dispatch(endpoint, unknown, HANDLERS)
    routes = [Route(PREFIX + "{group:str}/{verb:str}", dispatch, methods=["POST"]),
              Route(PREFIX + "{group:str}/{sub:str}/{verb:str}", dispatch, methods=["POST"])]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        log.info("shutting down: flushing and releasing the data directory")
        if before_close is not None:
            await run_in_threadpool(before_close)
        await run_in_threadpool(client.close)

    return Starlette(routes=routes, lifespan=lifespan)


def _dispatch(endpoint, unknown, handlers):
    async def route(request: Request) -> JSONResponse:
        key = request.url.path.removeprefix(PREFIX)
        if key not in handlers:
            return await unknown(request)
        return await endpoint(request)
    return route
