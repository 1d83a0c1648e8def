"""One exception hierarchy for the whole engine.

Every error carries the Milvus error code (``.code``) and a message (``.message``) that says
what was wrong and what to do about it. Front ends (the Python client, REST, gRPC) only map
these to their wire format; they never invent errors of their own.
"""
from __future__ import annotations


class MilvusException(Exception):
    """Base class: ``code`` is the Milvus error code, ``message`` the human text."""

    default_code = 65535

    def __init__(self, message: str = "", code: int | None = None) -> None:
        self.code = self.default_code if code is None else int(code)
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return f"<{type(self).__name__}: (code={self.code}, message={self.message})>"

    def __reduce__(self):
        """Pickled as what it is, whatever its class's constructor takes: an error raised
        on a Ray worker reaches the coordinator as the same class, code and message."""
        return _remade, (type(self), self.message, self.code, dict(self.__dict__))


def _remade(cls: type, message: str, code: int, state: dict) -> MilvusException:
    err = cls.__new__(cls)
    MilvusException.__init__(err, message, code)
    err.__dict__.update(state)
    return err


class CollectionNotFound(MilvusException):
    default_code = 100

    def __init__(self, name: str) -> None:
        super().__init__(
            f"collection not found[database=default][collection={name}]: check the name "
            "with list_collections()"
        )


class CollectionNotLoaded(MilvusException):
    default_code = 101

    def __init__(self, name: str, loading: int | None = None) -> None:
        if loading is None:
            hint = f"call load_collection('{name}') first"
        else:
            hint = (f"it is loading ({loading}% done): wait until get_load_state('{name}') "
                    "says Loaded")
        super().__init__(f"collection not loaded[collection={name}]: {hint}")


class WorkerLost(MilvusException):
    """A Ray worker died under a call: the database re-places its segments (or serves
    them from replicas) and retries once."""

    default_code = 65535

    def __init__(self, worker: str, during: str = "a call") -> None:
        self.worker = worker
        super().__init__(f"worker {worker} is gone ({during}): its segments are being "
                         "placed on the other workers; no partial result is returned")


class PartitionNotFound(MilvusException):
    default_code = 200

    def __init__(self, name: str) -> None:
        super().__init__(
            f"partition not found[partition={name}]: check the name with list_partitions()"
        )


class PartitionNotLoaded(MilvusException):
    default_code = 201

    def __init__(self, name: str) -> None:
        super().__init__(
            f"partition not loaded[partition={name}]: call load_partitions() with it first"
        )


class IndexNotFound(MilvusException):
    default_code = 700

    def __init__(self, name: str, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"index not found[collection={name}]{extra}: create an index on every vector "
            "field with create_index() before loading"
        )


class ParamError(MilvusException):
    """Invalid parameter (Milvus code 1100). The message names the parameter and the fix."""

    default_code = 1100

    def __init__(self, message: str) -> None:
        if not message.endswith("invalid parameter"):
            message = f"{message}: invalid parameter"
        super().__init__(message)


class DataError(ParamError):
    """Rows that do not fit the schema (insert/upsert). Nothing is written."""


class InsufficientMemory(MilvusException):
    default_code = 1400

    def __init__(self, device: str, needed: int, free: int, what: str = "") -> None:
        self.needed = int(needed)
        self.free = int(free)
        subject = f" to load {what}" if what else ""
        super().__init__(
            f"insufficient device memory on {device}{subject}: needs {needed} bytes, "
            f"{free} bytes free; release other collections, load fewer fields "
            "(load_fields=...), or raise memory_limit"
        )


class FieldNotFound(MilvusException):
    default_code = 1700

    def __init__(self, name: str, where: str = "") -> None:
        extra = f" in {where}" if where else ""
        super().__init__(
            f"field not found[field={name}]{extra}: check the name with describe_collection()"
        )


class AliasNotFound(MilvusException):
    default_code = 1600

    def __init__(self, shown_name: str) -> None:
        super().__init__(f"alias not found[database=default][alias={shown_name}]: see "
                         "list_aliases()")


class AliasConflict(MilvusException):
    """An alias that names a collection, or is taken by another collection."""

    default_code = 1601


class DatabaseNotFound(MilvusException):
    default_code = 800

    def __init__(self, shown_name: str) -> None:
        super().__init__(f"database not found[database={shown_name}]: create it with "
                         "create_database, or use one that list_databases names")


class IndexCannotBeDropped(MilvusException):
    default_code = 65535

    def __init__(self) -> None:
        super().__init__("index cannot be dropped, collection is loaded, please release it first")


class DirectoryLocked(MilvusException):
    default_code = 65535


class StorageError(MilvusException):
    """A collection's files could not be read (missing, truncated or corrupt)."""

    default_code = 65535

    def __init__(self, collection: str, what: str, path: object, cause: BaseException,
                 outcome: str) -> None:
        self.collection = collection
        self.path = str(path)
        super().__init__(
            f"cannot read {what} of collection {collection} ({path}): "
            f"{type(cause).__name__}: {cause}. {outcome} Nothing on disk was changed: restore "
            "the damaged file from a backup, or drop the collection and insert its rows again"
        )


class WriteFailed(MilvusException):
    """The disk refused a write (full, read-only, I/O error)."""

    default_code = 65535

    def __init__(self, path: str, cause: BaseException, outcome: str) -> None:
        self.path = path
        super().__init__(f"could not write {path}: {type(cause).__name__}: {cause}. {outcome}")
