"""Fixtures shared by test modules: one tiny app session (tests/app_helpers.py) per run."""

from __future__ import annotations

import pytest
from app_helpers import tiny_session, torch_threads

from analysis.session import Session


@pytest.fixture(scope="session")
def tiny_app(tmp_path_factory: pytest.TempPathFactory) -> Session:
    """The tiny generated set, three tiny checkpoints and a results folder, as a session."""
    with torch_threads(1):
        return tiny_session(tmp_path_factory.mktemp("app"))
