"""Shared pytest configuration. Fixture modules live in tests/fixtures/."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: z2jh reference data (values.schema.yaml, values.yaml, hub-image-requirements.txt)
Z2JH_DIR = Path(os.environ.get("NBSPAWNER_Z2JH_DIR", REPO.parent / "shared" / "z2jh"))

# every module in tests/fixtures/ is a fixture plugin (slapd, control plane, JupyterHub, ...)
pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}"
    for p in (Path(__file__).parent / "fixtures").glob("*.py")
    if p.stem != "__init__"
)


@pytest.fixture(scope="session")
def z2jh_dir() -> Path:
    if not (Z2JH_DIR / "values.schema.yaml").exists():
        pytest.fail(f"z2jh reference data not found at {Z2JH_DIR}; set NBSPAWNER_Z2JH_DIR")
    return Z2JH_DIR
