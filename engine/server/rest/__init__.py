"""Milvus RESTful v2 API (``/v2/vectordb/...``) over an embedded MilvusClient."""
from .app import create_app

__all__ = ["create_app"]
