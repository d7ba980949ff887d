"""kubespawner's own test suite, run against NBSpawner (issue 19).

kubespawner's tests are read at test time from ``<shared>/kubespawner-tests/<tag>/tests``
(``NBSPAWNER_SHARED_DIR``, default ``<repo>/../shared``); nothing of them is copied here.

- :mod:`tests.kubespawner_suite.plugin`: the pytest plugin (``-p
  tests.kubespawner_suite.plugin``) that makes the name ``KubeSpawner`` in kubespawner's test
  modules refer to :class:`~tests.kubespawner_suite.plugin.SuiteSpawner`, an NBSpawner whose
  static directory knows every user the tests use, and deselects the tests that need a
  cluster.
- :mod:`tests.kubespawner_suite.expected`: the one list of expected failures (with the
  reason and category of each) and of deselected tests, referenced from
  ``docs/reference/compatibility.md``.
- :func:`suite_command`: the command line, shared by ``tests/integration/test_kubespawner_suite.py``
  and a person running the suite by hand (``python -m tests.kubespawner_suite``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: the shared reference data (same style as NBSPAWNER_Z2JH_DIR in tests/conftest.py)
SHARED_DIR = Path(os.environ.get("NBSPAWNER_SHARED_DIR", REPO.parent / "shared"))
SUITES_DIR = SHARED_DIR / "kubespawner-tests"
PLUGIN = "tests.kubespawner_suite.plugin"
#: pytest settings for the run (kubespawner's tests are plain ``async def`` functions)
INI_FILE = Path(__file__).with_name("suite.ini")


def _version_key(tag: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in tag.split("."))


def available_tags(suites_dir: Path = SUITES_DIR) -> list[str]:
    """The kubespawner release tags whose tests are in the shared folder, oldest first."""
    if not suites_dir.is_dir():
        return []
    tags = [p.name for p in suites_dir.iterdir() if (p / "tests" / "conftest.py").is_file()]
    return sorted(tags, key=_version_key)


@dataclass(frozen=True)
class Suite:
    #: the tag whose tests run
    tag: str
    #: the installed kubespawner version
    kubespawner_version: str
    #: ``<shared>/kubespawner-tests/<tag>/tests``
    tests_dir: Path

    @property
    def exact(self) -> bool:
        """False when no tag matches the installed kubespawner and the nearest lower one runs."""
        return self.tag == self.kubespawner_version


def pick_suite(kubespawner_version: str | None = None, suites_dir: Path = SUITES_DIR) -> Suite:
    """The suite for the installed kubespawner: the same tag, else the nearest lower tag.

    Raises ``LookupError`` (with what to set) when there is none.
    """
    if kubespawner_version is None:
        import kubespawner

        kubespawner_version = kubespawner.__version__
    tags = available_tags(suites_dir)
    if not tags:
        raise LookupError(
            f"no kubespawner test suites in {suites_dir}; set NBSPAWNER_SHARED_DIR to the "
            "folder holding kubespawner-tests/<tag>/tests"
        )
    wanted = _version_key(kubespawner_version)
    lower = [t for t in tags if _version_key(t) <= wanted]
    if not lower:
        raise LookupError(
            f"kubespawner {kubespawner_version} is older than every suite in {suites_dir} "
            f"({', '.join(tags)})"
        )
    tag = kubespawner_version if kubespawner_version in tags else lower[-1]
    return Suite(tag, kubespawner_version, suites_dir / tag / "tests")


def suite_command(suite: Suite, report: Path, *extra: str) -> list[str]:
    """The pytest command running ``suite`` with the plugin, writing a JSON report.

    Run it with the repository as the working directory (the plugin is imported from
    ``tests.kubespawner_suite``). ``-c`` points pytest at :data:`INI_FILE`, so neither the
    repository's pyproject.toml nor anything above the shared folder configures the run;
    ``--rootdir`` makes the node ids those of kubespawner's own runs (``test_spawner.py::...``).
    """
    return [
        sys.executable,
        "-m",
        "pytest",
        str(suite.tests_dir),
        "-c",
        str(INI_FILE),
        "--rootdir",
        str(suite.tests_dir),
        "-p",
        PLUGIN,
        "--ks-suite-tag",
        suite.tag,
        "--ks-suite-report",
        str(report),
        *extra,
    ]


def suite_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for :func:`suite_command`: nothing is written into the shared folder
    (it is read-only in CI), and the repository is importable."""
    env = dict(os.environ if base is None else base)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env
