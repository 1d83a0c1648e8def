"""engine/errors.py: every error survives pickling (how one raised on a Ray worker
reaches the coordinator) as the same class, code, message and attributes, whatever its
constructor takes."""
import inspect
import pickle

import pytest

from engine import errors

MADE = [
    errors.MilvusException("plain", code=1100),
    errors.CollectionNotFound("c"),
    errors.CollectionNotLoaded("c", loading=40),
    errors.WorkerLost("ray/1", "RayActorError"),
    errors.PartitionNotFound("p"),
    errors.PartitionNotLoaded("p"),
    errors.IndexNotFound("vec", "no index on it"),
    errors.ParamError("limit must be positive"),
    errors.DataError("row 3: dim mismatch"),
    errors.InsufficientMemory("cuda:0", 10, 5, "segment 4 of c"),
    errors.FieldNotFound("age", "in the filter"),
    errors.AliasNotFound("a"),
    errors.AliasConflict("alias a already exists", code=1601),
    errors.DatabaseNotFound("db"),
    errors.IndexCannotBeDropped(),
    errors.DirectoryLocked("locked by pid 12", code=65535),
    errors.StorageError("c", "field vec of segment 4", "/data/f1.safetensors",
                        ValueError("checksum"), "The load was rolled back."),
    errors.WriteFailed("/data/wal.log", OSError(28, "No space left"), "Nothing was written."),
]


def _classes():
    return {c for _, c in inspect.getmembers(errors, inspect.isclass)
            if issubclass(c, errors.MilvusException)}


def test_every_error_class_is_covered():
    assert {type(e) for e in MADE} == _classes()


@pytest.mark.parametrize("err", MADE, ids=lambda e: type(e).__name__)
def test_an_error_is_pickled_as_itself(err):
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert (back.code, back.message, str(back)) == (err.code, err.message, str(err))
    assert back.__dict__ == err.__dict__
    assert back.args == err.args
