"""Tenure's fixtures with the education plugin on (registered directly unless pip installed)."""

from __future__ import annotations

from types import ModuleType

import pytest
from tenure.testing import not_installed

import tenure_education

pytest_plugins = ["tenure.pytest_plugin"]


@pytest.fixture
def tenure_plugins() -> list[str]:
    return ["education"]


@pytest.fixture
def tenure_extra_plugins() -> list[ModuleType]:
    return not_installed(tenure_education)
