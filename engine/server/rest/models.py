"""Request bodies of the Milvus RESTful v2 API, validated with pydantic. Field names are
Milvus's camelCase; unknown keys are ignored, as Milvus does."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Named(_Body):
    collection_name: str = Field(alias="collectionName")


class FieldDef(_Body):
    field_name: str = Field(alias="fieldName")
    data_type: str = Field(alias="dataType")
    is_primary: bool = Field(False, alias="isPrimary")
    element_type_params: dict[str, Any] = Field(default_factory=dict, alias="elementTypeParams")
    element_data_type: str | None = Field(None, alias="elementDataType")
    nullable: bool = False
    default_value: Any = Field(None, alias="defaultValue")
    description: str = ""


class SchemaDef(_Body):
    auto_id: bool = Field(False, alias="autoID")
    auto_id_lower: bool | None = Field(None, alias="autoId")
    enable_dynamic_field: bool = Field(False, alias="enableDynamicField")
    fields: list[FieldDef]


class IndexDef(_Body):
    field_name: str = Field(alias="fieldName")
    index_name: str = Field("", alias="indexName")
    metric_type: str | None = Field(None, alias="metricType")
    index_type: str | None = Field(None, alias="indexType")
    params: dict[str, Any] = Field(default_factory=dict)


class CreateCollection(Named):
    dimension: int | None = None
    metric_type: str = Field("COSINE", alias="metricType")
    id_type: str = Field("Int64", alias="idType")
    auto_id: bool = Field(False, alias="autoID")
    primary_field_name: str = Field("id", alias="primaryFieldName")
    vector_field_name: str = Field("vector", alias="vectorFieldName")
    schema_: SchemaDef | None = Field(None, alias="schema")
    index_params: list[IndexDef] | None = Field(None, alias="indexParams")
    params: dict[str, Any] = Field(default_factory=dict)


class Load(Named):
    load_fields: list[str] | None = Field(None, alias="loadFields")
    skip_load_dynamic_field: bool = Field(False, alias="skipLoadDynamicField")
    replica_number: int = Field(1, alias="replicaNumber")


class LoadState(Named):
    partition_names: list[str] | None = Field(None, alias="partitionNames")


class Insert(Named):
    data: list[dict[str, Any]] | dict[str, Any]
    partition_name: str = Field("", alias="partitionName")


class Delete(Named):
    filter: str = ""
    ids: list[Any] | None = Field(None, alias="id")
    partition_name: str = Field("", alias="partitionName")


class Search(Named):
    data: list[Any]
    anns_field: str | None = Field(None, alias="annsField")
    filter: str = ""
    limit: int = 100
    offset: int = 0
    output_fields: list[str] | None = Field(None, alias="outputFields")
    search_params: dict[str, Any] = Field(default_factory=dict, alias="searchParams")
    partition_names: list[str] | None = Field(None, alias="partitionNames")


class Query(Named):
    filter: str = ""
    limit: int = 100
    offset: int = 0
    output_fields: list[str] | None = Field(None, alias="outputFields")
    partition_names: list[str] | None = Field(None, alias="partitionNames")


class Get(Named):
    id: Any
    output_fields: list[str] | None = Field(None, alias="outputFields")
    partition_names: list[str] | None = Field(None, alias="partitionNames")


class CreateIndex(Named):
    index_params: list[IndexDef] = Field(alias="indexParams")


class IndexNamed(Named):
    index_name: str = Field(alias="indexName")


class ListIndexes(Named):
    field_name: str = Field("", alias="fieldName")


class Partition(Named):
    partition_name: str = Field(alias="partitionName")


class Partitions(Named):
    partition_names: list[str] = Field(alias="partitionNames")
