"""Request bodies of the Milvus RESTful v2 API, validated with pydantic. Field names are
Milvus's camelCase. A key a model does not declare is refused (1100 naming it), never
ignored: Milvus keys Hotset does not serve (``groupingFields``, ``rerank``, ...) must not
answer success as if they had been applied. ``dbName`` is accepted on every body: the
database the call acts in (the one it names, for ``databases/*``). ``consistencyLevel`` is accepted where Milvus takes it: Hotset is
always strongly consistent, which satisfies every level."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Consistency = Literal["Strong", "Bounded", "Session", "Eventually", "Customized"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    db_name: str = Field("", alias="dbName")


class Named(_Body):
    collection_name: str = Field(alias="collectionName")


class _Part(BaseModel):
    """A nested object (schema, field, index): unknown keys refused as on bodies."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FieldDef(_Part):
    field_name: str = Field(alias="fieldName")
    data_type: str = Field(alias="dataType")
    is_primary: bool = Field(False, alias="isPrimary")
    element_type_params: dict[str, Any] = Field(default_factory=dict, alias="elementTypeParams")
    element_data_type: str | None = Field(None, alias="elementDataType")
    nullable: bool = False
    default_value: Any = Field(None, alias="defaultValue")
    description: str = ""
    is_partition_key: bool = Field(False, alias="isPartitionKey")


class SchemaDef(_Part):
    auto_id: bool = Field(False, alias="autoID")
    auto_id_lower: bool | None = Field(None, alias="autoId")
    enable_dynamic_field: bool = Field(False, alias="enableDynamicField")
    fields: list[FieldDef]


class IndexDef(_Part):
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
    consistency_level: Consistency = Field("Strong", alias="consistencyLevel")
    grouping_field: str | None = Field(None, alias="groupingField")
    group_size: int | None = Field(None, alias="groupSize")
    strict_group_size: bool | None = Field(None, alias="strictGroupSize")
    function_score: "FunctionScoreDef | None" = Field(None, alias="functionScore")


class FunctionDef(_Part):
    name: str = ""
    type: str = "Rerank"
    description: str = ""
    input_field_names: list[str] = Field(default_factory=list, alias="inputFieldNames")
    params: dict[str, Any] = Field(default_factory=dict)


class FunctionScoreDef(_Part):
    functions: list[FunctionDef]
    params: dict[str, Any] = Field(default_factory=dict)


Search.model_rebuild()


class SubSearch(_Part):
    """One search of entities/hybrid_search."""

    data: list[Any]
    anns_field: str = Field(alias="annsField")
    filter: str = ""
    limit: int = 100
    metric_type: str | None = Field(None, alias="metricType")
    params: dict[str, Any] = Field(default_factory=dict)


class Rerank(_Part):
    strategy: str
    params: dict[str, Any] = Field(default_factory=dict)


class HybridSearch(Named):
    search: list[SubSearch]
    rerank: Rerank
    limit: int = 100
    offset: int = 0
    output_fields: list[str] | None = Field(None, alias="outputFields")
    partition_names: list[str] | None = Field(None, alias="partitionNames")
    consistency_level: Consistency = Field("Strong", alias="consistencyLevel")


class Query(Named):
    filter: str = ""
    limit: int = 100
    offset: int = 0
    output_fields: list[str] | None = Field(None, alias="outputFields")
    partition_names: list[str] | None = Field(None, alias="partitionNames")
    consistency_level: Consistency = Field("Strong", alias="consistencyLevel")


class Get(Named):
    id: Any
    output_fields: list[str] | None = Field(None, alias="outputFields")
    partition_names: list[str] | None = Field(None, alias="partitionNames")
    consistency_level: Consistency = Field("Strong", alias="consistencyLevel")


class CreateIndex(Named):
    index_params: list[IndexDef] = Field(alias="indexParams")


class IndexNamed(Named):
    index_name: str = Field(alias="indexName")


class ListIndexes(Named):
    field_name: str = Field("", alias="fieldName")


class Rename(Named):
    new_collection_name: str = Field(alias="newCollectionName")
    new_db_name: str = Field("", alias="newDbName")


class AddField(Named):
    schema_: FieldDef = Field(alias="schema")


class Properties(Named):
    properties: dict[str, Any]


class PropertyKeys(Named):
    property_keys: list[str] = Field(alias="propertyKeys")


class Database(_Body):
    properties: dict[str, Any] = Field(default_factory=dict)


class DatabaseKeys(_Body):
    property_keys: list[str] = Field(alias="propertyKeys")


class Alias(_Body):
    alias_name: str = Field(alias="aliasName")


class AliasOf(Named):
    alias_name: str = Field(alias="aliasName")


class AliasList(_Body):
    collection_name: str = Field("", alias="collectionName")


class Partition(Named):
    partition_name: str = Field(alias="partitionName")


class Partitions(Named):
    partition_names: list[str] = Field(alias="partitionNames")
