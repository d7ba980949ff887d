"""The one list of kubespawner tests that fail (or are deselected) with NBSpawner swapped in.

``tests/integration/test_kubespawner_suite.py`` runs kubespawner's suite four times (NBSpawner
and, as a control, KubeSpawner itself; each with the tests' user names as written and with
POSIX names) and asserts with :func:`check_report` that the failing node ids of each run are
exactly :func:`expected_failures_for` that run, each failing for its reason (``match``): a new
failure fails it, and so does an entry whose test passes now (delete the entry).
``docs/reference/compatibility.md`` explains every difference and what the admin does instead.

Categories:

``bug: to be fixed``
    NBSpawner does something wrong; the reason names the place in ``nbspawner/``. Fix it and
    delete the entry. (None at the moment: the three of issue 19 were fixed before this suite
    ran, see compatibility.md.)
``difference``
    Intended: NBSpawner refuses users without a POSIX name, runs every container as the
    directory user, adds its passwd init container, reads the hub user's groups.
``upstream``
    Fails with KubeSpawner itself in that environment (the control run fails it too).
``renamed``
    Only in the ``posix`` pass: the test hard-codes the name ``mock@name`` that this pass
    renames (the control run fails it too).

Node ids are kubespawner's own (``test_spawner.py::test_x[param]``, relative to its tests
folder). An entry applies to the kubespawner tags in ``tags`` and, if ``jupyterhub`` is set,
only with those JupyterHub major versions; for a node id the first entry that applies wins.
"""

from __future__ import annotations

from dataclasses import dataclass

BUG = "bug: to be fixed"
DIFFERENCE = "difference"
UPSTREAM = "upstream"
RENAMED = "renamed"
#: what the control run (KubeSpawner itself) fails as well
CONTROL_CATEGORIES = (UPSTREAM, RENAMED)
ALL_TAGS = ("7.0.0", "7.1.0")
PASSES = ("as-written", "posix")


@dataclass(frozen=True)
class Entry:
    category: str
    reason: str
    #: text the failure's first line or NBSpawner's "Refusing to spawn" log line contains:
    #: the test must fail for this reason, not another
    match: str
    tags: tuple[str, ...] = ALL_TAGS
    #: JupyterHub major versions ("5", "6") the entry applies to; empty: any
    jupyterhub: tuple[str, ...] = ()
    #: the user-name passes it applies to
    passes: tuple[str, ...] = PASSES

    def applies(self, tag: str, usernames: str, jupyterhub: str) -> bool:
        major = jupyterhub.split(".")[0]
        return (
            tag in self.tags
            and usernames in self.passes
            and (not self.jupyterhub or major in self.jupyterhub)
        )


# ------------------------------------------------------------------ deselected: need a cluster

#: why kubespawner's cluster tests are not run (with the repo's control plane or at all)
CLUSTER = (
    "needs a Kubernetes cluster (the kube_client fixture) that runs images: kubespawner's "
    "conftest creates and deletes the namespaces kubespawner-test and kubespawner-another, "
    "streams pod logs, runs a hub pod from quay.io/jupyterhub/jupyterhub:latest and an exec "
    "pod from python:3.12-slim as root, and checks the single-user server with pods/exec. "
    "The repository's control plane (tests/fixtures/controlplane.py) has no "
    "kube-controller-manager (namespaces are never deleted) and its kubelet stand-in "
    "(tests/fixtures/kubelet.py) ignores images, refuses root containers and serves neither "
    "exec nor logs; NBSpawner's own spawns against it are tested in tests/k8s/"
)

_CLUSTER_TESTS = {
    "test_spawner.py::test_spawn_start": "starts a server and checks it through exec",
    "test_spawner.py::test_spawn_start_in_different_namespace": "a server in kube_another_ns",
    "test_spawner.py::test_spawn_start_enable_user_namespaces": "creates a per-user namespace",
    "test_spawner.py::test_spawn_component_label_and_other_labels": "starts a server",
    "test_spawner.py::test_spawn_internal_ssl": "hub pod with internal SSL, checks over exec",
    "test_spawner.py::test_spawn_services_enabled": "starts a server with a Service",
    "test_spawner.py::test_spawn_after_pod_created_hook": "starts a server, hook creates one",
    "test_spawner.py::test_spawn_progress": "reads a real kubelet's 'Started container' event",
    "test_spawner.py::test_spawn_start_restore_pod_name": "starts a server twice",
    "test_spawner.py::test_spawn_start_restore_namespace[True]": "starts servers in two ns",
    "test_spawner.py::test_spawn_start_restore_namespace[False]": "starts servers in two ns",
    "test_spawner.py::test_spawn_start_upgrade_pvc_name[True]": "creates a PVC, starts a server",
    "test_spawner.py::test_spawn_start_upgrade_pvc_name[False]": "creates a PVC, starts a server",
    "test_spawner.py::test_spawn_start_profile_list_override_namespace": "a profile's namespace",
    "test_spawner.py::test_spawn_start_profile_callback_override_namespace": "a callback's ns",
    "test_spawner.py::test_pod_connect_ip": "starts a server, connects through its name",
    "test_spawner.py::test_url_changed": "starts a server, checks the URL it reports",
    "test_spawner.py::test_delete_pvc": "creates and deletes a PVC of a started server",
    "test_utils.py::test_exec": "the exec fixture itself",
    "test_utils.py::test_exec_error": "the exec fixture itself",
}

#: node id -> why it is deselected
DESELECTED: dict[str, Entry] = {
    nodeid: Entry("cluster", f"{what}: {CLUSTER}", match="")
    for nodeid, what in _CLUSTER_TESTS.items()
}


# ------------------------------------------------------------------ expected failures

#: test_spawner.py's profile tests, which 7.1.0 parametrises over a list and a dict
#: ``profile_list`` (``[test_profiles0]``, ``[test_profiles1]``); 7.0.0 has the list only
_PROFILE_TESTS = (
    "test_default_profile",
    "test_kubespawner_override",
    "test_user_options_api",
    "test_user_options_set_from_form",
    "test_user_options_set_from_form_choices",
    "test_user_options_set_from_form_invalid_regex",
    "test_user_options_set_from_form_no_regex",
    "test_user_options_set_from_form_unlisted_choice",
)
#: tests whose spawner has the user ``mock@name`` (what ``KubeSpawner(_mock=True)`` invents)
#: and that build a pod or apply a profile, which needs the user's directory record
_MOCK_NAME_TESTS = (
    "test_profile.py::test_empty_user_options_and_profile_options_api",
    "test_profile.py::test_unlisted_choice_non_string_override",
    "test_spawner.py::test_expansion_hyphens",
    "test_spawner.py::test_extra_containers_dictionary",
    "test_spawner.py::test_extra_containers_list",
    "test_spawner.py::test_get_pod_manifest_tolerates_mixed_input",
    "test_spawner.py::test_init_containers_as_dict",
    "test_spawner.py::test_jupyterhub_supplied_env",
    "test_spawner.py::test_node_affinity_preferred",
    "test_spawner.py::test_node_affinity_required",
    "test_spawner.py::test_pod_affinity_preferred",
    "test_spawner.py::test_pod_affinity_required",
    "test_spawner.py::test_pod_anti_affinity_preferred",
    "test_spawner.py::test_pod_anti_affinity_required",
    "test_spawner.py::test_tolerations_dict",
    "test_spawner.py::test_tolerations_list",
    "test_spawner.py::test_volume_dict",
    "test_spawner.py::test_volume_list",
    "test_spawner.py::test_volume_mount_dictionary",
    "test_spawner.py::test_volume_mount_list",
    *(f"test_spawner.py::{name}" for name in _PROFILE_TESTS),
)


def _node_ids(nodeid: str) -> list[tuple[str, tuple[str, ...]]]:
    """(node id, tags) of one test: 7.1.0 parametrises the profile tests, 7.0.0 does not."""
    if nodeid.split("::")[1] not in _PROFILE_TESTS:
        return [(nodeid, ALL_TAGS)]
    return [(nodeid, ("7.0.0",))] + [
        (f"{nodeid}[{param}]", ("7.1.0",)) for param in ("test_profiles0", "test_profiles1")
    ]


POSIX_NAME = Entry(
    DIFFERENCE,
    "POSIX user names (compatibility.md, 'User names'): the hub user 'mock@name' is not a "
    "POSIX account name, so NBSpawner refuses the spawn (nbspawner/policy.py validate_record "
    "-> check_name; 403 invalid_record) before it builds a pod or applies a profile. The "
    "'posix' pass runs these tests with the name mock_name",
    match="mock@name: static: username is not a valid POSIX name",
    passes=("as-written",),
)
HUB_GROUPS = Entry(
    DIFFERENCE,
    "hub groups (compatibility.md, 'The hub user's groups'): NBSpawner.access_groups_from "
    "(default 'both') reads the hub user's groups (nbspawner/spawner.py access_groups); this "
    "test's MockUser is a unittest.mock.Mock whose made-up 'groups' attribute is not "
    "iterable. A JupyterHub User always has a list there; with groups=[] on the mock the "
    "test passes",
    match="'MockUser' object is not iterable",
)
RESTRICTED = Entry(
    DIFFERENCE,
    "every container runs as the user (compatibility.md, 'Pod Security restricted'): the "
    "test's init container asks for privileged: true, runAsUser 0 and capability NET_ADMIN; "
    "NBSpawner refuses that pod (nbspawner/podpatch.py harden_pod; 403 identity_conflict) "
    "where KubeSpawner builds it",
    match="init container 'mock_name_2' has securityContext.runAsUser 0",
    passes=("posix",),
)
PASSWD_INIT = Entry(
    DIFFERENCE,
    "the passwd init container (compatibility.md, 'The passwd init container'): NBSpawner "
    "appends its init container after the admin's two (passwd_hook: init-container, the "
    "default), so the pod has 3; the admin's come first, in key order",
    match="assert 3 == 2",
    passes=("posix",),
)
STOP_SIGNAL = Entry(
    UPSTREAM,
    "fails with KubeSpawner itself: kubespawner 7.0.0's test predates the field "
    "V1LifecycleHandler.stop_signal (Kubernetes 1.33) of kubernetes-asyncio >= 33 (the z2jh "
    "4.4.0 hub image pins 36.1.0); kubespawner 7.1.0 fixed the test",
    match="signal': None}",
    tags=("7.0.0",),
)
SSL_APP_LOOP = Entry(
    UPSTREAM,
    "fails with KubeSpawner itself: the suite's session fixture ssl_app calls "
    "JupyterHub.init_internal_ssl() outside an event loop, which JupyterHub 6 refuses "
    "(JupyterHubHTTPClient needs a running loop). NBSpawner's part of this test (the hub "
    "groups difference above) is then not reached",
    match="RuntimeError: no running event loop",
    jupyterhub=("6",),
)


def _renamed(what: str, match: str) -> Entry:
    return Entry(
        RENAMED,
        f"the test hard-codes {what} of the user 'mock@name', which the 'posix' pass renames "
        "to mock_name; KubeSpawner itself fails it under the rename too",
        match=match,
        passes=("posix",),
    )


#: (node id, entry), first applicable entry per node id wins (so UPSTREAM ones come first)
EXPECTED_FAILURES: list[tuple[str, Entry]] = [
    ("test_spawner.py::test_variable_expansion", SSL_APP_LOOP),
    ("test_utils.py::test_get_k8s_model", STOP_SIGNAL),
    *(
        (
            nodeid,
            Entry(
                POSIX_NAME.category,
                POSIX_NAME.reason,
                POSIX_NAME.match,
                tags,
                passes=POSIX_NAME.passes,
            ),
        )
        for test in _MOCK_NAME_TESTS
        for nodeid, tags in _node_ids(test)
    ),
    ("test_spawner.py::test_variable_expansion", HUB_GROUPS),
    ("test_spawner.py::test_get_pod_manifest_tolerates_mixed_input", RESTRICTED),
    ("test_spawner.py::test_init_containers_as_dict", PASSWD_INIT),
    (
        "test_spawner.py::test_get_pvc_manifest",
        _renamed(
            "the hash in the PVC name",
            "'user-mock-name---4c9506e1' == 'user-mock-name---6241db84'",
        ),
    ),
    (
        "test_spawner.py::test_jupyterhub_supplied_env",
        _renamed("the expanded {unescaped_username}", "It's mock@name"),
    ),
    (
        "test_spawner.py::test_spawner_env",
        _renamed(
            "a callable's environment value", "'mock_name (callable)' == 'mock@name (callable)'"
        ),
    ),
]


def deselected_for(tag: str) -> dict[str, str]:
    """Node id -> reason, of the tests deselected for kubespawner ``tag``."""
    return {n: e.reason for n, e in DESELECTED.items() if tag in e.tags}


def expected_failures_for(
    tag: str, usernames: str, spawner: str = "nbspawner", jupyterhub: str = ""
) -> dict[str, Entry]:
    """Node id -> entry, of the tests expected to fail for kubespawner ``tag`` in the pass
    ``usernames`` (``as-written`` or ``posix``) with JupyterHub version ``jupyterhub``, with
    NBSpawner or, in the control run (``spawner="kubespawner"``), with KubeSpawner itself."""
    if not jupyterhub:
        import jupyterhub as hub

        jupyterhub = hub.__version__
    found: dict[str, Entry] = {}
    for nodeid, entry in EXPECTED_FAILURES:
        if nodeid not in found and entry.applies(tag, usernames, jupyterhub):
            found[nodeid] = entry
    if spawner == "kubespawner":
        found = {n: e for n, e in found.items() if e.category in CONTROL_CATEGORIES}
    return found


def check_report(report: dict, partial: bool = False) -> list[str]:
    """What is wrong with a run's JSON report (plugin ``--ks-suite-report``): an empty list
    when the failing tests are exactly the expected ones, each for its expected reason.
    ``partial``: the run selected some tests only; expected failures that did not run are
    not missed."""
    wanted = expected_failures_for(
        report["tag"], report["usernames"], report["spawner"], report["jupyterhub"]
    )
    results = report["results"]
    if partial:
        wanted = {n: e for n, e in wanted.items() if n in results}
    failed = {n for n, r in results.items() if r["outcome"] != "passed"}
    problems = []
    for nodeid in sorted(failed - set(wanted)):
        r = results[nodeid]
        problems.append(f"NEW FAILURE ({r['outcome']}) {nodeid}: {r['refusal'] or r['message']}")
    for nodeid in sorted(set(wanted) - failed):
        state = "passes now" if nodeid in results else "did not run"
        problems.append(
            f"{nodeid} {state}: delete its entry in tests/kubespawner_suite/expected.py"
        )
    for nodeid in sorted(failed & set(wanted)):
        r, entry = results[nodeid], wanted[nodeid]
        if entry.match not in f"{r['message']}\n{r['refusal']}":
            problems.append(
                f"{nodeid} fails for another reason than expected.py says ({entry.match!r} "
                f"not in {r['message']!r} / {r['refusal']!r})"
            )
    for user in report.get("unknown_users", ()):
        problems.append(f"the directory does not know the user {user}: add it to spawner.py")
    if report["spawner"] == "nbspawner" and "test_spawner" not in report["swapped_modules"]:
        problems.append("NBSpawner was not swapped in for KubeSpawner in test_spawner")
    return problems
