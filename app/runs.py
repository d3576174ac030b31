"""Run folders of the dashboard: the artifacts root and the run folders under it.

The root is, in order of precedence, `--artifacts DIR` after `--` on the
`streamlit run app` command line, the `SIGNATTENTION_ARTIFACTS` environment
variable, or `artifacts/` in the repository. Only direct subfolders of the
root can be opened, so a run name taken from a URL cannot reach other files.
"""

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

ENV_VAR = "SIGNATTENTION_ARTIFACTS"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO_ROOT / "artifacts"
DEFAULT_RUN = "demo"
RUN_FILE = "run.json"


class RunNameError(ValueError):
    """A run name that does not name a run folder under the artifacts root."""


def artifacts_root(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Return the artifacts root from `--artifacts`, the environment variable or the default."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--artifacts", default=None)
    known, _ = parser.parse_known_args(list(argv) if argv is not None else [])
    environ = os.environ if environ is None else environ
    chosen = known.artifacts or environ.get(ENV_VAR) or str(DEFAULT_ROOT)
    return Path(chosen).expanduser().resolve()


# name parts of folders that an unfinished or replaced write leaves behind
TRANSIENT_MARKERS = (".tmp-", ".replaced-")


def list_runs(root: Path) -> list[str]:
    """Return the names of the subfolders of `root` that contain a run.json, sorted.

    Folders of an interrupted or replaced extraction (`NAME.tmp-PID`,
    `NAME.replaced-PID`) are left out.
    """
    if not root.is_dir():
        return []
    return sorted(
        child.name
        for child in root.iterdir()
        if child.is_dir()
        and (child / RUN_FILE).is_file()
        and not any(marker in child.name for marker in TRANSIENT_MARKERS)
    )


def run_path(root: Path, name: str) -> Path:
    """Return the folder of run `name` under `root`.

    Raises:
        RunNameError: if `name` is empty, absolute, contains a path separator
            or `..`, or does not resolve to a direct subfolder of `root`.
    """
    if not name or name in {".", ".."} or "/" in name or "\\" in name or Path(name).is_absolute():
        raise RunNameError(
            f"run {name!r} is not a folder name; choose one of the runs under {root}"
        )
    path = (root / name).resolve()
    if path.parent != root.resolve():
        raise RunNameError(f"run {name!r} resolves outside {root}; choose one of the runs under it")
    return path


def choose_default_run(runs: Sequence[str]) -> str | None:
    """Return `demo` when present, else the first run, else None."""
    if DEFAULT_RUN in runs:
        return DEFAULT_RUN
    return runs[0] if runs else None
