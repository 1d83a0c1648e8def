"""Hotset: a GPU-accelerated vector engine with a Milvus-compatible collection API.

Public surface: ``MilvusClient`` (pymilvus's ``MilvusClient`` calls, over a data directory),
``DataType``, ``LoadState``, the schema classes and the error hierarchy.
"""
from . import errors
from .client import MilvusClient
from .errors import MilvusException
from .hybrid import AnnSearchRequest, RRFRanker, WeightedRanker
from .index import IndexParams
from .loader import LoadState
from .schema import CollectionSchema, DataType, FieldSchema

__version__ = "0.1.0"

__all__ = ["MilvusClient", "DataType", "LoadState", "CollectionSchema", "FieldSchema",
           "IndexParams", "MilvusException", "errors", "AnnSearchRequest", "RRFRanker",
           "WeightedRanker", "__version__"]
