"""Were the runs of a comparison trained under the same conditions?

An EDF comparison is only about the spaces when everything else is equal: the data set,
the input shape and the training recipe. Comparing a 2-epoch run with a 1-epoch run
measures the recipe, not the space. This lists every difference, for warnings (or a
refusal with --strict), read from each run's run.toml and train.toml.
"""

from __future__ import annotations

from dsd.data.recipe import read_for_run
from dsd.store.run import Run

SHAPE_KEYS = ("dataset", "resolution", "in_channels", "num_classes", "stem_stride")


def differences(runs: list[tuple[str, Run]]) -> list[str]:
    """One line per setting that differs between the named runs (empty: comparable)."""
    if len(runs) < 2:
        return []
    settings = {name: _settings(run) for name, run in runs}
    keys = dict.fromkeys(k for s in settings.values() for k in s)
    out = []
    for key in keys:
        values = {name: s.get(key) for name, s in settings.items()}
        if len({repr(v) for v in values.values()}) > 1:
            shown = ", ".join(f"{v if v is not None else 'unset'} ({n})" for n, v in values.items())
            out.append(f"{key} differs: {shown}")
    untrained = [name for name, run in runs if not run.train_path.exists()]
    if untrained and len(untrained) < len(runs):
        out.append(f"no recipe recorded (untrained) for {', '.join(untrained)}")
    return out


def _settings(run: Run) -> dict:
    manifest = run.manifest()
    out = {k: manifest.get(k) for k in SHAPE_KEYS}
    recipe = read_for_run(run)
    if recipe is not None:
        out.update({f"recipe.{k}": v for k, v in recipe.to_dict().items() if k != "dataset"})
    return out
