"""dsd: design network design spaces (Radosavovic et al. 2019, 2020) as a tool.

The public API (`dsd.sample`, `dsd.train_batch`, `dsd.results`, `dsd.compare`, ... one
function per CLI command, `dsd.api.COMMANDS`) lives in `dsd.api` and is loaded on first
use, so `import dsd` stays light and torch-free.
"""

from dsd.version import __version__  # noqa: F401  (dsd.__version__)

_API = ("open_run", "sample", "train_batch", "results", "build_model", "compare", "show",
        "status", "adjust", "report", "plan", "fit", "trend", "list_spaces", "show_space", "describe_model",
        "check_models", "study_run", "study_report", "study_verify", "study_summary",
        "import_nds", "import_pycls_sweep", "export", "sweep_status", "sweep_cancel")


def __getattr__(name: str):
    if name in _API:
        from dsd import api

        return getattr(api, name)
    raise AttributeError(f"module 'dsd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
