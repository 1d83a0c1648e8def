"""kernels/crossover.py: the measured dispatch thresholds per device, the defaults where
none were measured, and a clear error (naming the file) for a table that is there but
cannot be used."""
import json

import pytest

from kernels import crossover


@pytest.fixture
def table(monkeypatch, tmp_path):
    path = tmp_path / "kernels.json"
    monkeypatch.setenv("HOTSET_KERNEL_TABLE", str(path))
    crossover.thresholds.cache_clear()
    yield path
    crossover.thresholds.cache_clear()


def test_defaults_without_a_table(table):
    assert not table.exists()
    assert crossover.thresholds("NVIDIA H100 80GB HBM3") == crossover.DEFAULTS


def test_measured_thresholds_per_device_over_the_defaults(table):
    crossover.save("NVIDIA H200", {"ivf_flat": 6.0, "flat": 64.0}, {"measured": "x"})
    crossover.save("NVIDIA H100 80GB HBM3", {"ivf_pq": 40.0}, {"measured": "y"})
    h200 = crossover.thresholds("NVIDIA H200")
    assert h200 == {**crossover.DEFAULTS, "ivf_flat": 6.0, "flat": 64.0}
    assert crossover.thresholds("NVIDIA H100 80GB HBM3")["ivf_pq"] == 40.0
    assert crossover.thresholds("cpu") == crossover.DEFAULTS
    saved = json.loads(table.read_text())
    assert saved["format"] == crossover.FORMAT and set(saved["devices"]) == {
        "NVIDIA H200", "NVIDIA H100 80GB HBM3"}


def test_xdg_cache_is_the_default_place(monkeypatch, tmp_path):
    monkeypatch.delenv("HOTSET_KERNEL_TABLE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert crossover.table_path() == tmp_path / "hotset" / "kernels.json"


@pytest.mark.parametrize("text, match", [
    ("{not json", "cannot be read"),
    ('{"format": 99, "devices": {}}', "cannot be read"),
    ('{"format": 1, "devices": {"cpu": {"flat": "many"}}}', "not a non-negative number"),
    ('{"format": 1, "devices": {"cpu": {"ivf_flat": -1}}}', "not a non-negative number")])
def test_an_unusable_table_is_an_error_naming_it(table, text, match):
    table.write_text(text)
    with pytest.raises(ValueError, match=match) as e:
        crossover.thresholds("cpu")
    assert str(table) in str(e.value) and "bench kernels --crossover" in str(e.value)


def test_describe_says_where_the_thresholds_come_from(table):
    assert "defaults (no measurement" in crossover.describe("NVIDIA H200")
    crossover.save("NVIDIA H200", {"ivf_flat": 6.0}, {})
    line = crossover.describe("NVIDIA H200")
    assert "ivf_flat 6" in line and f"measured, from {table}" in line
    table.write_text("{")
    with pytest.raises(ValueError, match="cannot be read"):
        crossover.describe("NVIDIA H200")
