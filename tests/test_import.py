"""Other tools' results as dsd runs: the NDS release."""

from __future__ import annotations

import json

import pytest

from dsd.space.rebuild import arch_of
from dsd.store.results import read_results
from dsd.store.run import Run

# The three records microsoft/nni's NDS tutorial prints (docs/source/tutorials/
# nasbench_as_dataset.rst), in the release's record format (nni's nds/db_gen.py reads
# `net`, `optim`, `rng_seed`, `params`, `flops`, `train_ep_top1`, `test_ep_top1`,
# `train_ep_loss`): net lists start with the stem; best / final test accuracy as printed.
TUTORIAL = {
    "ResNeXt-A": ({"block_type": "res_bottleneck_block", "bot_muls": [0.0, 0.25, 0.25, 0.25],
                   "ds": [1, 16, 1, 4], "num_gs": [1, 2, 1, 2], "ss": [1, 1, 2, 2],
                   "ws": [16, 64, 128, 16]}, 83_002, 69_890_986, 90.48, 90.39),
    "ResNet": ({"block_type": "res_basic_block", "bot_muls": [], "ds": [1, 12, 12, 12], "num_gs": [],
                "ss": [1, 1, 2, 2], "ws": [16, 24, 24, 40]}, 594_138, 184_519_578, 93.58, 93.49),
    "Vanilla": ({"block_type": "double_plain_block", "ds": [1, 12, 12, 12], "ss": [1, 1, 2, 2],
                 "ws": [16, 24, 32, 40]}, 689_770, 208_363_930, 84.5, 84.35),
}


def _record(net, params, flops, best_acc, final_acc, seed=1, shift=0.0):
    curve = [60.0 - i * 0.4 for i in range(98)] + [100 - best_acc + shift, 100 - final_acc + shift]
    return {"net": net, "params": params, "flops": flops, "rng_seed": seed,
            "optim": {"base_lr": 0.1, "wd": 0.0005, "max_ep": 100},
            "train_ep_top1": [50.0] * 100, "test_ep_top1": curve, "train_ep_loss": [0.5] * 100}


@pytest.mark.parametrize("space", TUTORIAL)
def test_tutorial_records_import_with_their_exact_params(tmp_path, cli, space):
    net, params, flops, best, final = TUTORIAL[space]
    f = tmp_path / f"{space}.json"
    f.write_text(json.dumps([_record(net, params, flops, best, final, seed=s, shift=s) for s in (1, 2, 3)]))
    out = tmp_path / "run"
    r = cli("import", "nds", str(f), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "params recomputed: 3 of 3 equal" in r.stdout and not r.stderr
    run = Run(out)
    df = run.samples()
    assert df.params.tolist() == [params] * 3 and df.nds_params.tolist() == [params] * 3
    assert df.nds_flops.tolist() == [flops] * 3
    # NDS's flops add 5 per conv output element (acts less the classifier's 10 outputs).
    assert (df.flops + 5 * (df.acts - 10) == flops).all()
    final_rows = read_results(run.results_dir).final().sort_index()
    assert final_rows.error_min.tolist() == pytest.approx([100 - best + s for s in (1, 2, 3)])
    assert final_rows.error_last.tolist() == pytest.approx([100 - final + s for s in (1, 2, 3)])
    assert set(final_rows.epochs) == {100} and final_rows.seed.tolist() == [1, 2, 3]
    arch = arch_of(run, df.iloc[0])  # rebuilds as recorded
    assert arch.ws == tuple(net["ws"][1:]) and arch.strides == (1, 2, 2) and arch.stem_w == 16
    r = cli("edf", "show", str(out), "--bootstrap", "100")  # every analysis reads it
    assert r.returncode == 0, r.stderr


def test_malformed_nds_files_get_one_line(tmp_path, cli):
    net, params, flops, best, final = TUTORIAL["ResNet"]
    good = json.dumps([_record(net, params, flops, best, final)])
    cases = {"truncated.json": good[: len(good) // 2], "object.json": '{"a": 1}',
             "cells.json": json.dumps([{"net": {"genotype": {}}, "params": 1}]), "empty.json": "[]"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        r = cli("import", "nds", str(tmp_path / name), "--out", str(tmp_path / name / "run"))
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (name, r.stderr)
    r = cli("import", "nds", str(tmp_path / "missing.json"), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "no NDS file" in r.stderr
    (tmp_path / "ok.json").write_text(good)
    assert cli("import", "nds", str(tmp_path / "ok.json"), "--out", str(tmp_path / "r")).returncode == 0
    r = cli("import", "nds", str(tmp_path / "ok.json"), "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and "already holds a run" in r.stderr
