"""kubespawner's own test suite, run against NBSpawner (issue 19).

The tests are kubespawner's, read from ``<shared>/kubespawner-tests/<tag>/tests`` for the tag
of the installed kubespawner (``NBSPAWNER_SHARED_DIR``, default ``<repo>/../shared``). Each run
is a pytest subprocess with the plugin ``tests.kubespawner_suite.plugin``, which makes the name
``KubeSpawner`` in those tests refer to an NBSpawner with a static directory of the tests'
users and deselects the tests that need a cluster. Four runs:

- NBSpawner, the tests' user names as written (``mock@name``, ...);
- NBSpawner, the users renamed to POSIX names (what an admin's authenticator gives them), so the
  tests that NBSpawner refuses for the name get to build their pods;
- the same two with KubeSpawner itself (the control: what fails without NBSpawner).

Each must fail exactly the tests listed in ``tests/kubespawner_suite/expected.py``, each for its
reason: a new failure fails here, and so does a listed test that passes now.
``docs/reference/compatibility.md`` explains the list.
"""

from __future__ import annotations

import json
import subprocess
import warnings

import pytest

from tests.kubespawner_suite import REPO, SUITES_DIR, pick_suite, suite_command, suite_env
from tests.kubespawner_suite.expected import check_report, deselected_for

pytestmark = pytest.mark.integration

RUNS = [
    ("nbspawner", "as-written"),
    ("nbspawner", "posix"),
    ("kubespawner", "as-written"),
    ("kubespawner", "posix"),
]


@pytest.fixture(scope="module")
def suite():
    try:
        found = pick_suite()
    except LookupError as e:
        pytest.fail(str(e))
    if not found.exact:
        warnings.warn(
            f"no kubespawner-tests/{found.kubespawner_version} in {SUITES_DIR}: running the "
            f"nearest lower tag, {found.tag}",
            stacklevel=1,
        )
    return found


@pytest.mark.parametrize(("spawner", "usernames"), RUNS, ids=["-".join(r) for r in RUNS])
def test_kubespawner_suite(suite, spawner, usernames, tmp_path):
    report_path = tmp_path / "report.json"
    cmd = suite_command(
        suite,
        report_path,
        "--ks-suite-spawner",
        spawner,
        "--ks-suite-usernames",
        usernames,
        "-q",
        "--tb=line",
    )
    proc = subprocess.run(
        cmd, cwd=REPO, env=suite_env(), capture_output=True, text=True, timeout=300, check=False
    )
    output = f"$ {' '.join(cmd)}\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    # 0: all passed, 1: some failed; anything else (usage error, crash) is the plugin's problem
    assert proc.returncode in (0, 1), output
    report = json.loads(report_path.read_text())
    assert report["tag"] == suite.tag
    assert report["kubespawner"] == suite.kubespawner_version
    assert report["spawner"] == spawner and report["usernames"] == usernames
    assert not report["partial"], output
    # the cluster tests are deselected, by node id, each with its reason
    assert set(report["deselected"]) == set(deselected_for(suite.tag))
    assert not set(report["deselected"]) & set(report["results"])
    results = report["results"]
    assert len(results) > 100, output
    if spawner == "nbspawner":
        # the swap happened: test_spawner.py and test_profile.py built NBSpawners
        assert {"test_spawner", "test_profile"} <= set(report["swapped_modules"])
        built = [n for n, r in results.items() if r["spawners"]]
        assert len(built) >= 50, built
    else:
        assert report["swapped_modules"] == []
    problems = check_report(report)
    assert not problems, "\n".join(problems) + "\n\n" + output
