"""Shared test configuration.

pytest-trio runs ``async def`` tests (trio_mode in pyproject.toml); sans-IO tests are plain
functions and never import trio.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo_root() -> Path:
    """The repository's top folder (examples/, rtcgw/, tests/)."""
    return REPO_ROOT
