"""Fixtures shared by the whole test suite."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = REPO_ROOT.parent / "shared" / "real"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The folder of real signer recordings kept beside the repository.

    Tests that need it skip when it is absent, as on a user's fresh clone.
    """
    if not REAL_DATA.is_dir():
        pytest.skip(f"real signer data not found at {REAL_DATA}; it sits beside the repository in CI")
    return REAL_DATA
