"""``python -m engine serve --ray``: the server coordinates, two Ray actors (a local Ray
cluster it starts on loopback) hold the sealed segments. The Load & Release page's
pymilvus and cURL flows pass against it unchanged, and reads after load match."""
import pytest

pytest.importorskip("ray", reason="the cluster extra is not installed")
pymilvus = pytest.importorskip("pymilvus", reason="the gRPC tests need pymilvus")
pytest.importorskip("httpx", reason="the server harness needs httpx")

from . import test_grpc as page, test_rest as curl  # noqa: E402
from .test_grpc import client  # noqa: E402,F401  (pymilvus on this module's server)
from .harness import Server  # noqa: E402


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("ray") / "data", "--ray", "--ray-workers", "2")
    yield s
    s.stop()


def test_load_and_release_flows(srv, client, capsys):
    page.test_load_and_release_page_verbatim(client, capsys)
    curl.test_load_release_curl_sequence(srv)


def test_sealed_rows_are_served_by_the_actors(client):
    client.create_collection("docs", dimension=5, metric_type="L2")
    client.insert("docs", [{"id": i, "vector": [float(i), 0, 1, 2, 3], "n": i}
                           for i in range(40)])
    client.flush("docs")
    client.insert("docs", [{"id": 100 + i, "vector": [float(i), 0, 1, 2, 3], "n": i}
                           for i in range(40)])
    client.flush("docs")
    client.release_collection("docs")
    client.load_collection("docs")
    client.insert("docs", [{"id": 500, "vector": [3.0, 0, 1, 2, 3], "n": 3}])  # growing
    client.delete("docs", filter="id in [103, 4]")
    hits = client.search("docs", [[3.0, 0, 1, 2, 3]], limit=4, filter="n >= 3",
                         output_fields=["n"])[0]
    assert sorted(h["id"] for h in hits[:2]) == [3, 500]
    assert all(h["entity"]["n"] >= 3 for h in hits)
    got = client.query("docs", filter="n == 4", output_fields=["n"])
    assert [dict(r) for r in got] == [{"id": 104, "n": 4}]
    assert client.query("docs", filter="", output_fields=["count(*)"])[0]["count(*)"] == 79
