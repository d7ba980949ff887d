"""Every profile and choice of the example catalog, through the real kubespawner.

For each (image, size, GPU) a user could pick, a real ``KubeSpawner`` gets the built profile
list and the user options, runs ``load_user_options()`` and ``get_pod_manifest()``, and the pod
is validated against the official Kubernetes schema of several versions and checked for the
expected image, resources, GPU limits, node selectors, tolerations and volumes. The spawner is
configured like z2jh does (user-node toleration, home volume, uid 1000, resource defaults) so
the tests also show that the catalog's overrides keep that configuration.
"""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import all_versions, latest_version, major_minor, schema_contents
from referencing import Registry, Resource

from nbspawner.catalog import NO_GPU, load
from nbspawner.choices import check_user_options, resolve_selection
from nbspawner.errors import ForbiddenChoice
from nbspawner.profiles import build_profile_list

from ._kube import make_kubespawner, to_dict

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "nbspawner" / "examples" / "catalog.yaml"
CATALOG = load(EXAMPLE)
EVERY_GROUP = sorted(CATALOG.group_names())
#: Kubernetes versions the pods must be valid for
VERSIONS = ["1.30", "1.33", kubernetes_validate.latest_version()]

#: what z2jh configures on every spawner (scheduling.userPods, singleuser.storage, uid...)
Z2JH_CONFIG: dict[str, Any] = {
    "uid": 1000,
    "fs_gid": 100,
    "cpu_guarantee": 0.05,
    "mem_guarantee": 1024**3,
    "tolerations": [
        {
            "key": "hub.jupyter.org/dedicated",
            "operator": "Equal",
            "value": "user",
            "effect": "NoSchedule",
        },
        {
            "key": "hub.jupyter.org_dedicated",
            "operator": "Equal",
            "value": "user",
            "effect": "NoSchedule",
        },
    ],
    "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "claim-{username}"}}],
    "volume_mounts": [{"name": "home", "mountPath": "/home/jovyan"}],
    "cmd": ["jupyterhub-singleuser"],
}
Z2JH_TOLERATIONS = Z2JH_CONFIG["tolerations"]


@functools.cache
def pod_validator(version: str) -> jsonschema.protocols.Validator:
    """kubernetes-validate's strict Pod schema for ``version``, built once (2.6 ms per check
    instead of 23 ms when kubernetes_validate.validate rebuilds it every time)."""
    # the same lookup as kubernetes_validate.utils.validate
    full = [v for v in all_versions() if major_minor(v) <= major_minor(version)][-1]
    schema_dir = f"v{full}-local-strict"
    schema = schema_contents(f"kubernetes-json-schema/{schema_dir}/pod-v1.json", version)
    definitions = schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def assert_valid_pod(manifest: dict[str, Any]) -> None:
    for version in VERSIONS:
        errors = sorted(pod_validator(version).iter_errors(manifest), key=str)
        assert not errors, f"Kubernetes {version}: " + "; ".join(
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]
        )


def test_validator_matches_kubernetes_validate():
    """The cached validator is the one kubernetes-validate uses (and it does reject bad pods)."""
    good = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x"},
        "spec": {"containers": [{"name": "c", "image": "x:1"}]},
    }
    bad = {**good, "spec": {"containers": [{"name": "c", "image": "x:1", "hostPath": "/"}]}}
    for version in VERSIONS:
        assert kubernetes_validate.validate(good, version, strict=True)
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(bad, version, strict=True)
        assert not list(pod_validator(version).iter_errors(good))
        assert list(pod_validator(version).iter_errors(bad))
    assert latest_version() in VERSIONS


def every_choice() -> list[tuple[str, str | None, str | None]]:
    """(profile, size, gpu) for every profile and every size x GPU choice of the example."""
    cases = []
    for profile in build_profile_list(CATALOG, EVERY_GROUP):
        options = profile.get("profile_options", {})
        sizes = list(options.get("size", {}).get("choices", {})) or [None]
        gpus = list(options.get("gpu", {}).get("choices", {})) or [None]
        cases.extend((profile["slug"], s, g) for s, g in itertools.product(sizes, gpus))
    return cases


CASES = every_choice()


def test_every_visible_image_is_covered():
    covered = {profile for profile, _, _ in CASES}
    assert covered == {i.slug for i in CATALOG.images if not i.hidden}
    assert len(CASES) >= 40


@pytest.mark.parametrize("profile, size, gpu", CASES, ids=lambda v: str(v))
async def test_example_pod_manifest(tmp_path, profile, size, gpu):
    profile_list = build_profile_list(CATALOG, EVERY_GROUP)
    spawner = await make_kubespawner(
        tmp_path, username="alice", profile_list=profile_list, **json.loads(json.dumps(Z2JH_CONFIG))
    )
    user_options = {"profile": profile}
    if size:
        user_options["size"] = size
    if gpu:
        user_options["gpu"] = gpu
    check_user_options(profile_list, user_options, catalog=CATALOG)
    spawner.user_options = user_options
    await spawner.load_user_options()
    manifest = to_dict(await spawner.get_pod_manifest())
    assert_valid_pod(manifest)

    selection = resolve_selection(CATALOG, profile_list, user_options)
    image = CATALOG.image(profile)
    spec = manifest["spec"]
    (container,) = spec["containers"]
    assert container["image"] == image.image

    # resources
    limits = container["resources"].get("limits", {})
    requests = container["resources"].get("requests", {})
    chosen_size = CATALOG.size(size)
    assert selection.size is chosen_size
    assert requests["cpu"] == chosen_size.cpu_guarantee
    assert requests["memory"] == chosen_size.mem_guarantee
    assert limits.get("cpu") == chosen_size.cpu_limit
    assert limits.get("memory") == chosen_size.mem_limit

    # GPU limit, node selector and tolerations; z2jh's tolerations are kept
    gpu_resources = {g.resource for g in CATALOG.gpus}
    tolerations = spec.get("tolerations", [])
    assert tolerations[: len(Z2JH_TOLERATIONS)] == Z2JH_TOLERATIONS
    if gpu in (None, NO_GPU):
        assert selection.gpu is None
        assert not gpu_resources & set(limits)
        assert tolerations == Z2JH_TOLERATIONS
        assert not spec.get("nodeSelector")
    else:
        chosen_gpu = CATALOG.gpu(gpu)
        assert selection.gpu is chosen_gpu
        assert {k: v for k, v in limits.items() if k in gpu_resources} == {
            chosen_gpu.resource: str(chosen_gpu.count)
        }
        assert spec.get("nodeSelector", {}) == dict(chosen_gpu.node_selector)
        assert tolerations[len(Z2JH_TOLERATIONS) :] == [dict(t) for t in chosen_gpu.tolerations]

    # volumes: z2jh's home first, then the image's own
    volumes = [v["name"] for v in spec["volumes"]]
    assert volumes == ["home", *(v["name"] for v in image.volumes)]
    assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == "claim-alice"
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    assert mounts == ["/home/jovyan", *(m["mountPath"] for m in image.volume_mounts)]

    # environment and IDE route
    env = {e["name"]: e.get("value") for e in container["env"]}
    for key, value in image.env.items():
        assert env[key] == value
    if image.default_url:
        assert env["JUPYTERHUB_DEFAULT_URL"] == image.default_url
    else:
        assert "JUPYTERHUB_DEFAULT_URL" not in env
    assert container["args"] == ["jupyterhub-singleuser"]

    # nothing from the catalog touched identity or privileges
    assert spec["securityContext"] == {"fsGroup": 100}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "runAsUser": 1000}


async def test_command_image_and_callable_profile_list(tmp_path):
    """ide: command sets the container args; profile_list as an async callable (how the
    spawner wires it) works through kubespawner, and the form only shows the user's images."""
    catalog = load(EXAMPLE)
    from nbspawner.catalog import load_data

    data = {
        "version": 1,
        "images": [
            {
                "slug": "custom",
                "display_name": "Custom",
                "image": "registry.example.org/custom:1",
                "ide": "command",
                "cmd": ["start-hub-server.sh", "--debug"],
                "env": {"DATA_DIR": "/srv/{username}"},
            },
            {
                "slug": "secret-lab",
                "display_name": "Secret lab",
                "image": "x/secret:1",
                "allowed_groups": ["staff"],
            },
        ],
    }
    command_catalog = load_data(data)

    async def profile_list(spawner):
        return build_profile_list(command_catalog, ["physics"])

    spawner = await make_kubespawner(tmp_path, username="bob", profile_list=profile_list)
    form = await spawner.get_options_form()
    assert 'value="custom"' in form
    assert "secret-lab" not in form and "Secret lab" not in form
    spawner.user_options = {"profile": "custom"}
    await spawner.load_user_options()
    manifest = to_dict(await spawner.get_pod_manifest())
    assert_valid_pod(manifest)
    (container,) = manifest["spec"]["containers"]
    assert container["args"] == ["start-hub-server.sh", "--debug"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DATA_DIR"] == "/srv/bob"
    assert catalog is not command_catalog


async def test_forged_options_never_reach_kubespawner(tmp_path):
    """What the spawner does before super().load_user_options(): refuse forged options.
    kubespawner alone would answer an unknown profile with a ValueError listing every profile
    and an unknown choice with a raw KeyError."""
    profile_list = build_profile_list(CATALOG, ["chemistry"])
    spawner = await make_kubespawner(tmp_path, username="bob", profile_list=profile_list)
    for forged in (
        {"profile": "pytorch-cuda"},
        {"profile": "scipy", "size": "xlarge"},
        {"profile": "scipy", "image": "evil/root:1"},
    ):
        with pytest.raises(ForbiddenChoice):
            check_user_options(profile_list, forged, catalog=CATALOG)
    spawner.user_options = {"profile": "scipy", "size": "xlarge"}
    with pytest.raises(KeyError):  # kubespawner 7.1's own answer
        await spawner.load_user_options()


async def test_a_profile_cannot_change_identity_even_with_defaults(tmp_path):
    """The catalog has no way to set uid/gid/privileged: a spawner with none configured keeps
    kubespawner's defaults whatever the choice."""
    profile_list = build_profile_list(CATALOG, EVERY_GROUP)
    for profile in profile_list:
        spawner = await make_kubespawner(tmp_path, profile_list=profile_list)
        spawner.user_options = {"profile": profile["slug"]}
        await spawner.load_user_options()
        assert spawner.uid is None and spawner.gid is None
        assert spawner.privileged is False
        assert spawner.supplemental_gids == []
        manifest = to_dict(await spawner.get_pod_manifest())
        text = json.dumps(manifest)
        assert "hostPath" not in text and '"privileged": true' not in text
        assert '"runAsUser": 0' not in text


async def test_size_without_limits_clears_the_spawners_limits(tmp_path):
    """z2jh sets singleuser.cpu.limit / memory.limit on every spawner: a size without limits
    must remove them, or the pod could get a limit below the size's request (API refusal)."""
    from nbspawner.catalog import load_data

    catalog = load_data(
        {
            "version": 1,
            "images": [{"slug": "scipy", "display_name": "SciPy", "image": "x/scipy:1"}],
            "sizes": [
                {"slug": "big", "display_name": "Big", "cpu_guarantee": 4, "mem_guarantee": "16Gi"}
            ],
        }
    )
    spawner = await make_kubespawner(
        tmp_path,
        profile_list=build_profile_list(catalog, []),
        cpu_limit=1.0,
        mem_limit="2G",
    )
    spawner.user_options = {"profile": "scipy", "size": "big"}
    await spawner.load_user_options()
    manifest = to_dict(await spawner.get_pod_manifest())
    assert_valid_pod(manifest)
    resources = manifest["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": 4.0, "memory": 16 * 2**30}
    assert resources.get("limits", {}) == {}
