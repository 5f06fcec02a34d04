"""run.toml as a typed, frozen Manifest: every published run's file reads and writes back
byte for byte, keys a newer version adds survive, and a damaged file is one clear error."""

import dataclasses
from pathlib import Path

import pytest

from dsd import tomlw
from dsd.errors import DsdError
from dsd.store.manifest import Manifest, read_manifest
from dsd.store.run import Run

ROOT = Path(__file__).resolve().parents[1]


def test_every_published_manifest_round_trips_byte_for_byte():
    files = sorted((ROOT / "studies").rglob("run.toml"))
    assert len(files) >= 20  # plain, replicate, fidelity and study-3 runs
    for p in files:
        m = read_manifest(p)
        assert m.exists and m.n > 0 and m.space_name, p
        assert tomlw.dumps(m.to_dict()) == p.read_text(), p


def test_a_run_and_its_manifest_travel_to_spawned_workers():
    import pickle

    p = next((ROOT / "studies").rglob("replicates/seed-1/*/run.toml"))
    run = Run(p.parent)
    m = run.manifest()
    back = pickle.loads(pickle.dumps(run))
    assert back.manifest() == m and back.manifest().to_dict() == m.to_dict()


def test_derived_and_shape_fields_are_typed():
    p = next((ROOT / "studies").rglob("replicates/seed-1/*/run.toml"))
    m = read_manifest(p)
    assert m.derived.purpose == "replicate" and m.derived.train_seed == 1
    assert (p.parent / m.derived.of).resolve().name == p.parent.name
    assert m.shape().resolution == 28 and m.shape().num_classes == 10


def test_unknown_keys_survive_a_rewrite_and_the_manifest_is_frozen(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text('name = "r"\nn = 3\nfuture_key = "x"\n\n[stream]\nblock = 0\noffset = 5\n\n'
                 '[space]\nname = "s"\n\n[imported]\nsource = "a.json"\n')
    m = read_manifest(p)
    assert m.with_(n=4).to_dict()["future_key"] == "x"
    assert m.with_(n=4).to_dict()["imported"] == {"source": "a.json"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.n = 5
    with pytest.raises(TypeError):
        m.space["name"] = "t"  # the space table is read-only too
    assert m.space_table() == {"name": "s"}


def test_a_missing_manifest_is_empty_and_a_damaged_one_is_one_clear_error(tmp_path):
    assert not Run(tmp_path).manifest().exists
    assert Run(tmp_path).shape().resolution == 224  # what a run without shape keys meant
    (tmp_path / "run.toml").write_text('name = "r"\n[stream]\nblock = "x"\n')
    with pytest.raises(DsdError, match="malformed run manifest"):
        Run(tmp_path).manifest()
    (tmp_path / "run.toml").write_text('name = "r\n')
    with pytest.raises(DsdError, match="not valid TOML"):
        Run(tmp_path).manifest()


def test_manifest_fields_cover_what_is_written():
    names = {f.name for f in dataclasses.fields(Manifest)} - {"extra"}
    m = read_manifest(next((ROOT / "studies").rglob("fidelity/*/run.toml")))
    assert set(m.to_dict()) <= names
