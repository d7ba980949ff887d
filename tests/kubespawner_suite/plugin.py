"""pytest plugin: kubespawner's own tests, with NBSpawner in place of KubeSpawner.

Load it with ``-p tests.kubespawner_suite.plugin`` on a run of
``<shared>/kubespawner-tests/<tag>/tests`` (see :func:`tests.kubespawner_suite.suite_command`).
What it does, in hook order:

``pytest_load_initial_conftests`` (before kubespawner's conftest.py is imported)
    - points ``KUBECONFIG`` at an offline kube config (a server on 127.0.0.1:9, "discard",
      that nothing contacts): kubespawner loads a kube config in every constructor, and
      kubespawner's conftest loads one at import;
    - if the synchronous ``kubernetes`` client (kubespawner's ``test`` extra, not a dependency
      of nbspawner) is not installed, registers a stand-in for the four names the tests import
      from it: ``client.ApiClient`` (test_objects.py only serialises models with it: the
      stand-in's ``sanitize_for_serialization`` is kubernetes_asyncio's, the same generated
      code), and ``client.CoreV1Api``, ``config.load_kube_config``, ``stream.stream`` that
      conftest.py imports for its exec helper. Only cluster tests (deselected) exec; any call
      that would reach a cluster raises.

``pytest_configure``
    - ``--ks-suite-usernames posix``: the users get POSIX names (``mock@name`` -> ``mock_name``,
      see :func:`tests.kubespawner_suite.spawner.map_usernames_to_posix`), as an admin's
      authenticator mapping gives them, so tests NBSpawner refuses for the name reach the pod;
    - ``--ks-suite-spawner kubespawner``: the control run, no swap (what fails without
      NBSpawner).

``pytest_collection_modifyitems``
    - deselects, by node id, the tests of :data:`tests.kubespawner_suite.expected.DESELECTED`
      (each with its reason) and refuses to run when a test that needs a cluster (it uses the
      ``kube_client`` fixture, directly or through ``hub``, ``exec_python``, ...) is not in
      that list, or when an entry names no test (a stale list);
    - makes the name ``KubeSpawner`` in every collected test module and in the suite's
      conftest refer to :class:`tests.kubespawner_suite.spawner.SuiteSpawner` (an NBSpawner
      with a static directory of the tests' users). The tests construct ``KubeSpawner(...)``
      and set ``c.KubeSpawner.*`` config, which NBSpawner, a subclass, reads the same way.

``pytest_runtest_logreport`` / ``pytest_sessionfinish``
    - records every test's outcome, the first line of its failure and how many SuiteSpawners
      it built, and writes them with the versions to ``--ks-suite-report`` (JSON);
    - ``pytest_terminal_summary`` compares the failures with
      :data:`tests.kubespawner_suite.expected.EXPECTED_FAILURES`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import pytest

#: a kube config whose server is never contacted (port 9 is "discard")
OFFLINE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: offline
  cluster:
    server: https://127.0.0.1:9
contexts:
- name: offline
  context: {cluster: offline, user: offline, namespace: kubespawner-test}
current-context: offline
users:
- name: offline
  user: {token: not-a-real-token}
"""

#: the two passes: the tests' user names as written, or mapped to POSIX names
USERNAME_PASSES = ("as-written", "posix")

#: the fixture every cluster test of kubespawner's conftest depends on
CLUSTER_FIXTURE = "kube_client"


class _State:
    tmpdir: Path | None = None
    tag: str = ""
    usernames: str = "as-written"
    spawner: str = "nbspawner"
    #: nodeid -> {"outcome", "message", "spawners", "when"}
    results: dict[str, dict[str, Any]] = {}
    deselected: dict[str, str] = {}
    swapped_modules: list[str] = []
    sync_kubernetes: str = ""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kubespawner-suite", "kubespawner's tests against NBSpawner")
    group.addoption(
        "--ks-suite-tag",
        default="",
        help="the kubespawner tag of the tests being run (default: the name of the folder "
        "above the tests folder, as in kubespawner-tests/7.1.0/tests)",
    )
    group.addoption("--ks-suite-report", default="", help="write the results to this JSON file")
    group.addoption(
        "--ks-suite-spawner",
        choices=("nbspawner", "kubespawner"),
        default="nbspawner",
        help="kubespawner: the control run, no swap (everything selected must pass)",
    )
    group.addoption(
        "--ks-suite-usernames",
        choices=USERNAME_PASSES,
        default="as-written",
        help="as-written: the tests' own user names (mock@name, ...); posix: the names an "
        "authenticator mapping gives them (mock_name, ...), see tests/kubespawner_suite/spawner.py",
    )


# ---------------------------------------------------------------------------- before conftest


def _sync_kubernetes_stand_in() -> None:
    """Modules ``kubernetes``, ``.client``, ``.config``, ``.stream`` with the names
    kubespawner's tests import; constructing, loading (the conftest does both at import) and
    serialising work, anything that would talk to a cluster raises."""

    class _Unavailable(RuntimeError):
        pass

    def _refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise _Unavailable(
            "the synchronous kubernetes client is not installed (kubespawner's test extra); "
            "only kubespawner's cluster tests use it, and they are deselected"
        )

    from kubernetes_asyncio.client import ApiClient as AsyncApiClient

    class ApiClient:
        """Serialisation only (no configuration, no connection pool)."""

        PRIMITIVE_TYPES = AsyncApiClient.PRIMITIVE_TYPES
        sanitize_for_serialization = AsyncApiClient.sanitize_for_serialization

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def __getattr__(self, name: str) -> Any:
            return _refuse

    class CoreV1Api:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def __getattr__(self, name: str) -> Any:
            return _refuse

    root = types.ModuleType("kubernetes")
    root.__path__ = []  # a package
    root.__doc__ = "stand-in registered by tests.kubespawner_suite.plugin"
    client = types.ModuleType("kubernetes.client")
    client.ApiClient = ApiClient
    client.CoreV1Api = CoreV1Api
    config = types.ModuleType("kubernetes.config")
    config.load_kube_config = lambda *a, **k: None  # nothing to load: nothing is contacted
    stream = types.ModuleType("kubernetes.stream")
    stream.stream = _refuse
    for mod in (root, client, config, stream):
        sys.modules[mod.__name__] = mod
    root.client, root.config, root.stream = client, config, stream


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    _State.tmpdir = Path(tempfile.mkdtemp(prefix="nbspawner-ks-suite-"))
    kubeconfig = _State.tmpdir / "kubeconfig"
    kubeconfig.write_text(OFFLINE_KUBECONFIG)
    os.environ["KUBECONFIG"] = str(kubeconfig)
    # kubernetes_asyncio reads $KUBECONFIG once, at import: if it was imported already
    import kubernetes_asyncio.config.kube_config as kube_config

    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubeconfig)
    if importlib.util.find_spec("kubernetes") is None:
        _sync_kubernetes_stand_in()
        _State.sync_kubernetes = "stand-in (not installed)"
    else:
        import kubernetes

        _State.sync_kubernetes = getattr(kubernetes, "__version__", "installed")


def pytest_configure(config: pytest.Config) -> None:
    _State.usernames = config.getoption("--ks-suite-usernames")
    _State.spawner = config.getoption("--ks-suite-spawner")
    if _State.usernames == "posix":
        from .spawner import map_usernames_to_posix

        map_usernames_to_posix()


# ---------------------------------------------------------------------------- collection


def _tag(config: pytest.Config) -> str:
    tag = config.getoption("--ks-suite-tag")
    if tag:
        return tag
    return Path(config.rootpath).parent.name


def _partial(config: pytest.Config) -> bool:
    """True when some tests were left out (file or node-id arguments, -k, -m)."""
    return not _whole_suite(config) or bool(
        config.getoption("keyword") or config.getoption("markexpr")
    )


def _whole_suite(config: pytest.Config) -> bool:
    """True when the run collected the whole tests folder (not some files or node ids)."""
    root = Path(config.rootpath).resolve()
    return all(Path(arg).resolve() == root for arg in config.args)


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselect: the lists are checked on everything
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    import kubespawner

    from . import expected
    from .spawner import SuiteSpawner

    _State.tag = tag = _tag(config)
    listed = expected.deselected_for(tag)
    ids = {item.nodeid for item in items}
    stale = sorted(set(listed) - ids)
    if stale and _whole_suite(config):
        raise pytest.UsageError(
            f"tests/kubespawner_suite/expected.py deselects tests that kubespawner {tag} does "
            f"not have: {stale}"
        )
    unlisted = sorted(
        item.nodeid
        for item in items
        if CLUSTER_FIXTURE in getattr(item, "fixturenames", ()) and item.nodeid not in listed
    )
    if unlisted:
        raise pytest.UsageError(
            f"these tests of kubespawner {tag} need a cluster ({CLUSTER_FIXTURE}) but are not "
            f"deselected in tests/kubespawner_suite/expected.py: {unlisted}"
        )
    keep = [item for item in items if item.nodeid not in listed]
    dropped = [item for item in items if item.nodeid in listed]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep
    _State.deselected = dict(listed)

    # the swap: the name KubeSpawner in kubespawner's test modules and conftest
    original = kubespawner.KubeSpawner
    modules = {id(m): m for m in (item.getparent(pytest.Module) for item in keep) if m}
    targets = [m.obj for m in modules.values()]
    conftest = sys.modules.get("conftest")
    if conftest is not None and Path(getattr(conftest, "__file__", "")).parent == Path(
        config.rootpath
    ):
        targets.append(conftest)
    if _State.usernames == "posix":
        from .spawner import rename_test_users

        rename_test_users(targets)
    swapped = []
    for module in targets:
        if _State.spawner == "kubespawner":
            break  # the control run
        if getattr(module, "KubeSpawner", None) is original:
            module.KubeSpawner = SuiteSpawner
            swapped.append(module.__name__)
    _State.swapped_modules = sorted(swapped)


# ---------------------------------------------------------------------------- results


def pytest_runtest_setup(item: pytest.Item) -> None:
    from .spawner import SuiteSpawner

    SuiteSpawner.instances = 0


def _message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return text.strip().splitlines()[0] if text.strip() else ""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    from .spawner import SuiteSpawner

    entry = _State.results.setdefault(
        report.nodeid,
        {"outcome": "passed", "message": "", "refusal": "", "when": "", "spawners": 0},
    )
    if report.failed and entry["outcome"] != "failed":
        entry.update(outcome="failed", message=_message(report), when=report.when)
        # NBSpawner's refusals say the cause in the hub log only (the user gets one sentence)
        refusals = [
            line.split("Refusing to spawn ", 1)[1]
            for line in (report.caplog or "").splitlines()
            if "Refusing to spawn " in line
        ]
        entry["refusal"] = refusals[-1] if refusals else ""
    elif report.skipped and entry["outcome"] == "passed":
        entry.update(outcome="skipped", message=_message(report), when=report.when)
    if report.when == "teardown":
        entry["spawners"] = SuiteSpawner.instances


def _report() -> dict[str, Any]:
    import jupyterhub
    import kubespawner

    from .spawner import SuiteSpawner

    return {
        "tag": _State.tag,
        "usernames": _State.usernames,
        "spawner": _State.spawner,
        "kubespawner": kubespawner.__version__,
        "jupyterhub": jupyterhub.__version__,
        "python": platform.python_version(),
        "sync_kubernetes": _State.sync_kubernetes,
        "swapped_modules": _State.swapped_modules,
        "unknown_users": sorted(SuiteSpawner.unknown_users),
        "deselected": _State.deselected,
        "results": _State.results,
    }


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.getoption("--ks-suite-report")
    if path and _State.tag:
        data = _report()
        data["exitstatus"] = int(exitstatus)
        data["partial"] = _partial(session.config)
        Path(path).write_text(json.dumps(data, indent=1, sort_keys=True))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not _State.tag:
        return
    from . import expected

    tr = terminalreporter
    against = "NBSpawner" if _State.spawner == "nbspawner" else "KubeSpawner itself (control)"
    tr.section(f"kubespawner {_State.tag} suite against {against} (user names: {_State.usernames})")
    if _State.spawner == "nbspawner":
        tr.write_line(f"NBSpawner in place of KubeSpawner in: {', '.join(_State.swapped_modules)}")
    partial = _partial(config)
    if partial:
        tr.write_line("(part of the suite: only the tests that ran are compared)")
    problems = expected.check_report(_report(), partial=partial)
    for problem in problems:
        tr.write_line(problem)
    if not problems:
        failed = sum(1 for r in _State.results.values() if r["outcome"] != "passed")
        tr.write_line(f"failures as expected: {failed} (tests/kubespawner_suite/expected.py)")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _State.tmpdir is not None:
        shutil.rmtree(_State.tmpdir, ignore_errors=True)
        _State.tmpdir = None
