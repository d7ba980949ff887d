"""nbspawner.profiles: per-group profile lists, defaults, caching and server-side enforcement."""

from __future__ import annotations

import copy
import json
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from traitlets.config import Config

from nbspawner.catalog import NO_GPU, Catalog, load, load_data
from nbspawner.choices import check_user_options, resolve_selection
from nbspawner.errors import ForbiddenChoice
from nbspawner.hubconfig import HubConfig
from nbspawner.offline import make_spawner, offline_kubeconfig
from nbspawner.overrides import MergeList, NodeTerms
from nbspawner.profiles import ALLOWED_OVERRIDE_KEYS, META, build_profile_list

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "nbspawner" / "examples" / "catalog.yaml"

#: the example catalog's users, as the example directory file defines them
USERS = {
    "alice": ["physics", "gpu-users"],
    "bob": ["chemistry"],
    "carol": ["staff"],
    "dave": [],
    "erin": ["physics"],
}


@pytest.fixture(scope="module")
def example() -> Catalog:
    return load(EXAMPLE)


def slugs(profile_list: list[dict[str, Any]]) -> list[str]:
    return [p["slug"] for p in profile_list]


def default_of(profile_list: list[dict[str, Any]]) -> str:
    defaults = [p["slug"] for p in profile_list if p.get("default")]
    assert len(defaults) == 1, defaults
    return defaults[0]


def choices(profile: dict[str, Any], option: str) -> list[str]:
    return list(profile.get("profile_options", {}).get(option, {}).get("choices", {}))


def default_choice(profile: dict[str, Any], option: str) -> str:
    found = [
        slug
        for slug, choice in profile["profile_options"][option]["choices"].items()
        if choice.get("default")
    ]
    assert len(found) == 1, found
    return found[0]


def by_slug(profile_list, slug):
    return next(p for p in profile_list if p["slug"] == slug)


def catalog(**overrides: Any) -> Catalog:
    """A small catalog for focused tests."""
    data: dict[str, Any] = {
        "version": 1,
        "images": [
            {
                "slug": "scipy",
                "display_name": "SciPy",
                "image": "quay.io/jupyter/scipy-notebook:2024-09-30",
            },
            {
                "slug": "physics-lab",
                "display_name": "Physics lab",
                "image": "example.org/physics:1",
                "allowed_groups": ["physics"],
            },
            {
                "slug": "cuda",
                "display_name": "CUDA",
                "image": "example.org/cuda:12",
                "allowed_groups": ["physics", "chemistry"],
                "gpus": ["a100"],
            },
        ],
        "sizes": [
            {
                "slug": "small",
                "display_name": "Small",
                "cpu_guarantee": "500m",
                "cpu_limit": 1,
                "mem_guarantee": "1Gi",
                "mem_limit": "2Gi",
            },
            {
                "slug": "big",
                "display_name": "Big",
                "cpu_guarantee": 4,
                "mem_guarantee": "16Gi",
                "allowed_groups": ["physics"],
            },
        ],
        "gpus": [
            {
                "slug": "a100",
                "display_name": "A100",
                "resource": "nvidia.com/gpu",
                "allowed_groups": ["physics"],
            },
        ],
    }
    data.update(overrides)
    return load_data(data)


# ---------------------------------------------------------------------------
# Filtering and defaults
# ---------------------------------------------------------------------------


def test_example_profiles_per_user(example):
    lists = {user: build_profile_list(example, groups) for user, groups in USERS.items()}
    assert slugs(lists["alice"]) == [
        "scipy",
        "datascience",
        "pytorch-cuda",
        "scipy-2024-04",
        "kubeflow-scipy",
        "kubeflow-pytorch",
        "kubeflow-pytorch-cuda",
        "kubeflow-tensorflow",
        "kubeflow-tensorflow-cuda",
        "kubeflow-codeserver",
        "pytorch-rocm",
    ]
    assert slugs(lists["bob"]) == [
        "scipy",
        "datascience",
        "scipy-2024-04",
        "kubeflow-scipy",
        "kubeflow-tensorflow",
        "kubeflow-rstudio",
    ]
    assert slugs(lists["carol"]) == [
        "scipy",
        "datascience",
        "scipy-2024-04",
        "kubeflow-codeserver",
        "kubeflow-rstudio",
    ]
    assert slugs(lists["dave"]) == ["scipy", "scipy-2024-04"]
    assert slugs(lists["erin"]) == [
        "scipy",
        "datascience",
        "scipy-2024-04",
        "kubeflow-scipy",
        "kubeflow-pytorch",
        "kubeflow-tensorflow",
        "kubeflow-codeserver",
    ]


def test_example_defaults_per_group(example):
    alice = build_profile_list(example, USERS["alice"])
    assert default_of(alice) == "pytorch-cuda"  # gpu-users comes first in defaults
    torch = by_slug(alice, "pytorch-cuda")
    assert default_choice(torch, "size") == "large"
    assert default_choice(torch, "gpu") == "nvidia-mig-1g-10gb"
    # the image offers only its own sizes and the user's GPUs ("none" is not listed)
    assert choices(torch, "size") == ["medium", "large", "xlarge"]
    assert choices(torch, "gpu") == ["nvidia-a100", "nvidia-mig-1g-10gb"]

    bob = build_profile_list(example, USERS["bob"])
    assert default_of(bob) == "kubeflow-rstudio"
    assert default_choice(by_slug(bob, "kubeflow-rstudio"), "size") == "medium"
    assert choices(by_slug(bob, "scipy"), "size") == ["small", "medium", "large"]

    carol = build_profile_list(example, USERS["carol"])
    assert default_of(carol) == "kubeflow-codeserver"
    assert default_choice(by_slug(carol, "scipy"), "size") == "large"

    dave = build_profile_list(example, USERS["dave"])
    assert default_of(dave) == "scipy"
    assert choices(by_slug(dave, "scipy"), "size") == ["small", "medium"]
    assert default_choice(by_slug(dave, "scipy"), "size") == "small"

    erin = build_profile_list(example, USERS["erin"])
    assert default_of(erin) == "kubeflow-scipy"
    # kubeflow-scipy is CPU only: no GPU option at all
    assert "gpu" not in by_slug(erin, "kubeflow-scipy").get("profile_options", {})


def test_default_falls_back_field_by_field():
    c = catalog(
        defaults={
            "physics": {"image": "physics-lab"},
            "*": {"image": "scipy", "size": "big"},
        }
    )
    physics = build_profile_list(c, ["physics"])
    assert default_of(physics) == "physics-lab"
    # size comes from the "*" entry; physics may use "big"
    assert default_choice(by_slug(physics, "physics-lab"), "size") == "big"
    others = build_profile_list(c, ["chemistry"])
    assert default_of(others) == "scipy"
    # "big" is not allowed for chemistry: the first allowed size is the default
    assert default_choice(by_slug(others, "scipy"), "size") == "small"


def test_no_defaults_means_first_entries():
    profile_list = build_profile_list(catalog(), ["physics"])
    assert default_of(profile_list) == "scipy"
    assert default_choice(profile_list[0], "size") == "small"


def test_gpu_option_and_gpu_only_images():
    c = catalog()
    physics = build_profile_list(c, ["physics"])
    # a GPU-only image offers just its GPUs; the default is the first one
    assert choices(by_slug(physics, "cuda"), "gpu") == ["a100"]
    assert default_choice(by_slug(physics, "cuda"), "gpu") == "a100"
    # an image without a gpus list offers "no GPU" first, as the default
    assert choices(by_slug(physics, "scipy"), "gpu") == [NO_GPU, "a100"]
    assert default_choice(by_slug(physics, "scipy"), "gpu") == NO_GPU
    assert (
        by_slug(physics, "scipy")["profile_options"]["gpu"]["choices"][NO_GPU]["display_name"]
        == "No GPU"
    )
    # chemistry may use the cuda image but no GPU: the image is not offered at all
    chemistry = build_profile_list(c, ["chemistry"])
    assert "cuda" not in slugs(chemistry)
    assert "gpu" not in chemistry[0].get("profile_options", {})


def test_image_without_allowed_size_is_not_offered():
    c = catalog(
        images=[
            {"slug": "scipy", "display_name": "SciPy", "image": "x/scipy:1"},
            {"slug": "big-only", "display_name": "Big only", "image": "x/big:1", "sizes": ["big"]},
        ]
    )
    assert slugs(build_profile_list(c, ["physics"])) == ["scipy", "big-only"]
    assert slugs(build_profile_list(c, ["chemistry"])) == ["scipy"]


def test_catalog_without_sizes_has_no_size_option():
    c = load_data(
        {"version": 1, "images": [{"slug": "scipy", "display_name": "SciPy", "image": "x/scipy:1"}]}
    )
    (profile,) = build_profile_list(c, [])
    assert "profile_options" not in profile
    assert profile["kubespawner_override"] == {"image": "x/scipy:1"}


def test_user_with_nothing_allowed_gets_an_empty_list():
    c = catalog(
        images=[{"slug": "p", "display_name": "P", "image": "x/p:1", "allowed_groups": ["physics"]}]
    )
    assert build_profile_list(c, ["chemistry"]) == []
    assert build_profile_list(c, []) == []


def test_hidden_and_deprecated(example):
    for groups in USERS.values():
        assert "scipy-next" not in slugs(build_profile_list(example, groups))
    old = by_slug(build_profile_list(example, []), "scipy-2024-04")
    assert old["display_name"] == "SciPy (April 2024) (deprecated)"
    assert old["description"].startswith(
        'Deprecated: Use "SciPy" instead; this image will be removed at the end of the semester. '
        "The previous SciPy image"
    )
    assert "default" not in old
    # a hidden image cannot be requested either
    with pytest.raises(ForbiddenChoice) as info:
        check_user_options(
            build_profile_list(example, []), {"profile": "scipy-next"}, catalog=example
        )
    assert info.value.user_message == "You may not use the image 'scipy-next'."


def test_labels_and_description(example):
    profile = by_slug(build_profile_list(example, ["physics"]), "kubeflow-scipy")
    assert profile["description"] == (
        "Kubeflow's JupyterLab image with the SciPy packages, and the shared datasets. "
        "(stack: kubeflow, python: 3.11)"
    )


def test_ide_routes_and_overrides(example):
    carol = build_profile_list(example, ["staff", "chemistry"])
    assert by_slug(carol, "kubeflow-rstudio")["kubespawner_override"]["default_url"] == "/rstudio/"
    assert (
        by_slug(carol, "kubeflow-codeserver")["kubespawner_override"]["default_url"] == "/vscode/"
    )
    assert "default_url" not in by_slug(carol, "scipy")["kubespawner_override"]
    command = load_data(
        {
            "version": 1,
            "images": [
                {
                    "slug": "custom",
                    "display_name": "Custom",
                    "image": "x/custom:1",
                    "ide": "command",
                    "cmd": ["/usr/local/bin/start-hub-server", "--port=8888"],
                    "default_url": "/lab/tree/README.md",
                }
            ],
        }
    )
    override = build_profile_list(command, [])[0]["kubespawner_override"]
    assert override["cmd"] == ["/usr/local/bin/start-hub-server", "--port=8888"]
    assert override["default_url"] == "/lab/tree/README.md"


def test_size_and_gpu_overrides(example):
    alice = build_profile_list(example, USERS["alice"])
    torch = by_slug(alice, "pytorch-cuda")
    large = torch["profile_options"]["size"]["choices"]["large"]
    assert large["kubespawner_override"] == {
        "cpu_guarantee": 2.0,
        "cpu_limit": 4.0,
        "mem_guarantee": 16 * 2**30,
        "mem_limit": 16 * 2**30,
    }
    assert large[META] == {"size": "large"}
    a100 = torch["profile_options"]["gpu"]["choices"]["nvidia-a100"]["kubespawner_override"]
    # the chosen GPU's limit, and every other GPU resource of the catalog cleared
    assert a100["extra_resource_limits"] == {
        "amd.com/gpu": None,
        "nvidia.com/gpu": "1",
        "nvidia.com/mig-1g.10gb": None,
    }
    assert a100["node_selector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert list(a100["tolerations"]) == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    none = by_slug(alice, "scipy")
    assert "gpu" not in none.get("profile_options", {})  # scipy is CPU only: gpus [none]
    assert by_slug(alice, "pytorch-cuda")[META] == {"image": "pytorch-cuda"}


def test_size_without_limit_clears_configured_limits():
    c = catalog()
    big = by_slug(build_profile_list(c, ["physics"]), "scipy")["profile_options"]["size"][
        "choices"
    ]["big"]
    assert big["kubespawner_override"] == {
        "cpu_guarantee": 4.0,
        "cpu_limit": None,
        "mem_guarantee": 16 * 2**30,
        "mem_limit": None,
    }


def _walk_overrides(profile_list):
    for profile in profile_list:
        yield profile["slug"], profile["kubespawner_override"]
        for option in profile.get("profile_options", {}).values():
            for slug, choice in option["choices"].items():
                yield f"{profile['slug']}/{slug}", choice["kubespawner_override"]


def test_overrides_never_touch_identity_or_privileges(example):
    everything = build_profile_list(example, ["physics", "chemistry", "gpu-users", "staff"])
    seen = set()
    for where, override in _walk_overrides(everything):
        assert set(override) <= ALLOWED_OVERRIDE_KEYS, where
        seen |= set(override)
        text = json.dumps(override)
        for forbidden in ("hostPath", "privileged", "runAsUser", "runAsGroup", '"uid"', '"gid"'):
            assert forbidden not in text, (where, forbidden)
    assert {"image", "volumes", "extra_resource_limits", "tolerations", "cpu_limit"} <= seen


# ---------------------------------------------------------------------------
# Combinations mode
# ---------------------------------------------------------------------------


def combos() -> Catalog:
    return catalog(
        mode="combinations",
        profiles=[
            {
                "slug": "scipy-small",
                "display_name": "SciPy, small",
                "image": "scipy",
                "size": "small",
            },
            {"slug": "scipy-big", "display_name": "SciPy, big", "image": "scipy", "size": "big"},
            {
                "slug": "cuda-a100",
                "display_name": "CUDA on an A100",
                "image": "cuda",
                "size": "big",
                "gpu": "a100",
                "description": "One A100.",
            },
            {
                "slug": "lab-staff",
                "display_name": "Physics lab (staff)",
                "image": "physics-lab",
                "size": "small",
                "allowed_groups": ["staff"],
            },
        ],
        defaults={"physics": {"profile": "cuda-a100"}},
    )


def test_combinations_offer_only_fully_allowed_profiles():
    c = combos()
    physics = build_profile_list(c, ["physics"])
    assert slugs(physics) == ["scipy-small", "scipy-big", "cuda-a100"]
    assert default_of(physics) == "cuda-a100"
    assert slugs(build_profile_list(c, ["chemistry"])) == ["scipy-small"]
    # the profile allows staff, but its image is physics-only: both are needed
    assert slugs(build_profile_list(c, ["staff"])) == ["scipy-small"]
    assert slugs(build_profile_list(c, ["staff", "physics"])) == [
        "scipy-small",
        "scipy-big",
        "cuda-a100",
        "lab-staff",
    ]


def test_combination_profiles_carry_everything_in_one_override():
    physics = build_profile_list(combos(), ["physics"])
    cuda = by_slug(physics, "cuda-a100")
    assert "profile_options" not in cuda
    assert cuda["description"] == "One A100."
    override = cuda["kubespawner_override"]
    assert override["image"] == "example.org/cuda:12"
    assert override["cpu_guarantee"] == 4.0
    assert override["extra_resource_limits"] == {"nvidia.com/gpu": "1"}
    assert cuda[META] == {"profile": "cuda-a100", "image": "cuda", "size": "big", "gpu": "a100"}
    small = by_slug(physics, "scipy-small")
    assert small["kubespawner_override"]["extra_resource_limits"] == {"nvidia.com/gpu": None}


def test_combinations_enforcement_uses_the_word_profile():
    c = combos()
    profile_list = build_profile_list(c, ["chemistry"])
    with pytest.raises(ForbiddenChoice) as info:
        check_user_options(profile_list, {"profile": "cuda-a100"}, catalog=c)
    assert info.value.user_message == "You may not use the profile 'cuda-a100'."
    with pytest.raises(ForbiddenChoice) as info:
        check_user_options(profile_list, {"profile": "scipy-small", "size": "big"}, catalog=c)
    assert (
        info.value.user_message == "You may not use the size 'big' with the profile 'scipy-small'."
    )
    selection = resolve_selection(c, build_profile_list(c, ["physics"]), {})
    assert selection.profile == "cuda-a100"
    assert (selection.image.slug, selection.size.slug, selection.gpu.slug) == (
        "cuda",
        "big",
        "a100",
    )
    assert selection.combination.display_name == "CUDA on an A100"


# ---------------------------------------------------------------------------
# Immutability
# ---------------------------------------------------------------------------


def test_a_callers_changes_never_reach_the_catalog_or_the_next_list(example):
    profile_list = build_profile_list(example, ["chemistry"])
    assert len(profile_list) == 6
    # what kubespawner may do to the list it gets: change anything, deep inside too
    profile_list[0]["default"] = True
    profile_list[0]["kubespawner_override"]["image"] = "evil:1"
    profile_list[0]["profile_options"]["size"]["choices"].pop("small")
    for profile in profile_list:
        for value in profile["kubespawner_override"].values():
            if isinstance(value, list):
                value.append({"name": "injected"})
    profile_list.clear()
    fresh = build_profile_list(example, ["chemistry"])
    assert fresh[0]["kubespawner_override"]["image"] == "quay.io/jupyter/scipy-notebook:2024-09-30"
    assert "small" in fresh[0]["profile_options"]["size"]["choices"]
    assert sum(bool(p.get("default")) for p in fresh) == 1
    assert not any(
        {"name": "injected"} in v
        for p in fresh
        for v in p["kubespawner_override"].values()
        if isinstance(v, list)
    )
    assert fresh == build_profile_list(example, ["chemistry"])


def test_lists_hold_what_kubespawner_would_otherwise_add_in_place(example):
    """kubespawner 7.1's _get_initialized_profile_list must find nothing to change."""
    for groups in USERS.values():
        profile_list = build_profile_list(example, groups)
        assert all("slug" in p for p in profile_list)
        assert sum(bool(p.get("default")) for p in profile_list) == 1
        for profile in profile_list:
            for option in profile.get("profile_options", {}).values():
                assert option["unlisted_choice"] == {"enabled": False}
                assert any(c.get("default") for c in option["choices"].values())
        # and running it really changes nothing (it would raise on a read-only dict)
        from kubespawner import KubeSpawner

        initialised = KubeSpawner._get_initialized_profile_list(None, profile_list)
        assert initialised == profile_list


def test_profile_lists_are_json_serialisable(example):
    everything = build_profile_list(example, ["physics", "chemistry", "gpu-users", "staff"])
    data = json.loads(json.dumps(everything))
    assert data[2]["kubespawner_override"]["volumes"] == [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}
    ]


# ---------------------------------------------------------------------------
# MergeList: list overrides that keep the spawner's own entries
# ---------------------------------------------------------------------------


def fake_spawner(**traits):
    return SimpleNamespace(**traits)


def test_merge_list_keeps_configured_entries():
    spawner = fake_spawner(
        tolerations=[
            {
                "key": "hub.jupyter.org/dedicated",
                "operator": "Equal",
                "value": "user",
                "effect": "NoSchedule",
            }
        ],
        volumes=[{"name": "home", "nfs": {"server": "nfs", "path": "/home"}}],
    )
    tolerations = MergeList("tolerations", [{"key": "nvidia.com/gpu", "operator": "Exists"}])
    assert tolerations(spawner) == [
        {
            "key": "hub.jupyter.org/dedicated",
            "operator": "Equal",
            "value": "user",
            "effect": "NoSchedule",
        },
        {"key": "nvidia.com/gpu", "operator": "Exists"},
    ]
    volumes = MergeList(
        "volumes",
        [{"name": "dshm", "emptyDir": {"medium": "Memory"}}, {"name": "home", "emptyDir": {}}],
    )
    merged = volumes(spawner)
    # same name: the catalog's entry replaces the spawner's, in place
    assert merged == [
        {"name": "home", "emptyDir": {}},
        {"name": "dshm", "emptyDir": {"medium": "Memory"}},
    ]


def test_merge_lists_of_one_trait_add_up_and_do_not_repeat():
    spawner = fake_spawner(tolerations=[{"key": "a", "operator": "Exists"}])
    image = MergeList("tolerations", [{"key": "pool-b", "operator": "Exists"}])
    gpu = MergeList("tolerations", [{"key": "gpu-a", "operator": "Exists"}])
    for override in (image, gpu, gpu):  # the image's, then the GPU option's (applied twice)
        spawner.tolerations = override(spawner)
    assert spawner.tolerations == [
        {"key": "a", "operator": "Exists"},
        {"key": "pool-b", "operator": "Exists"},
        {"key": "gpu-a", "operator": "Exists"},
    ]


def test_node_terms_are_anded_with_the_configured_terms():
    user_nodes = {"matchExpressions": [{"key": "purpose", "operator": "In", "values": ["user"]}]}
    pool = {"key": "pool", "operator": "In", "values": ["highmem"]}
    gen = {"key": "gen", "operator": "In", "values": ["4"]}
    terms = NodeTerms(
        "node_affinity_required", [{"matchExpressions": [pool]}, {"matchExpressions": [gen]}]
    )
    # nothing configured: the catalog's terms as they are (ORed by Kubernetes)
    assert terms(fake_spawner(node_affinity_required=[])) == [
        {"matchExpressions": [pool]},
        {"matchExpressions": [gen]},
    ]
    # z2jh's "user nodes only" stays required with each of them
    assert terms(fake_spawner(node_affinity_required=[user_nodes])) == [
        {"matchExpressions": [*user_nodes["matchExpressions"], pool]},
        {"matchExpressions": [*user_nodes["matchExpressions"], gen]},
    ]


def test_merge_list_accepts_dict_form_traits():
    spawner = fake_spawner(
        volume_mounts={"b": {"name": "b", "mountPath": "/b"}, "a": {"name": "a", "mountPath": "/a"}}
    )
    merged = MergeList("volume_mounts", [{"name": "c", "mountPath": "/c"}])(spawner)
    assert [m["mountPath"] for m in merged] == ["/a", "/b", "/c"]


def test_merge_list_survives_kubespawners_deep_copy_and_serialises_as_a_list():
    merge = MergeList("volumes", [{"name": "x", "emptyDir": {}}])
    copied = copy.deepcopy(merge)  # kubespawner deep-copies the profile list
    assert type(copied) is MergeList and copied.trait == "volumes" and copied == merge
    assert json.loads(json.dumps(merge)) == [{"name": "x", "emptyDir": {}}]


# ---------------------------------------------------------------------------
# Enforcement
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user_options, status, user_message",
    [
        # another group's image (exists in the catalog)
        ({"profile": "kubeflow-rstudio"}, 403, "You may not use the image 'kubeflow-rstudio'."),
        # a forged, nonexistent slug gets the same answer
        ({"profile": "gpu-everything"}, 403, "You may not use the image 'gpu-everything'."),
        # a hidden image
        ({"profile": "scipy-next"}, 403, "You may not use the image 'scipy-next'."),
        # hostile input is not echoed
        ({"profile": "<script>alert(1)</script>"}, 403, "You may not use that image."),
        # sizes: nonexistent, and existing but not for this group
        ({"profile": "scipy", "size": "huge"}, 400, "There is no size 'huge'."),
        (
            {"profile": "scipy", "size": "xlarge"},
            403,
            "You may not use the size 'xlarge' with the image 'scipy'.",
        ),
        # GPUs: the image has no GPU option for erin
        (
            {"profile": "kubeflow-scipy", "gpu": "nvidia-mig-1g-10gb"},
            403,
            "You may not use the GPU 'nvidia-mig-1g-10gb' with the image 'kubeflow-scipy'.",
        ),
        ({"profile": "kubeflow-scipy", "gpu": "h100"}, 400, "There is no GPU 'h100'."),
        # free-form values are never accepted
        (
            {"profile": "scipy", "size--unlisted-choice": "64Gi"},
            400,
            "Only the offered choices can be used.",
        ),
        (
            {"profile": "scipy", "image--unlisted-choice": "evil/root:1"},
            400,
            "Only the offered choices can be used.",
        ),
        # settings smuggled through the REST API
        ({"profile": "scipy", "image": "evil/root:1"}, 400, "The option 'image' cannot be set."),
        ({"profile": "scipy", "uid": 0}, 400, "The option 'uid' cannot be set."),
        ({"profile": "scipy", "privileged": True}, 400, "The option 'privileged' cannot be set."),
        (
            {"profile": "scipy", "profile-option-scipy--size": "xlarge"},
            400,
            "The option 'profile-option-scipy--size' cannot be set.",
        ),
        # wrong types
        ({"profile": ["scipy"]}, 400, "The image must be given by name."),
        ({"profile": "scipy", "size": {"cpu": 64}}, 400, "The size must be given by name."),
        ("scipy", 400, "The server options were not understood."),
    ],
)
def test_forbidden_choices(example, user_options, status, user_message):
    profile_list = build_profile_list(example, USERS["erin"])
    with pytest.raises(ForbiddenChoice) as info:
        check_user_options(profile_list, user_options, catalog=example)
    assert info.value.status == status
    assert info.value.user_message == user_message
    assert info.value.reason == ("forbidden_choice" if status == 403 else "invalid_choice")


def test_forbidden_log_messages_name_the_reason(example):
    profile_list = build_profile_list(example, USERS["bob"])
    with pytest.raises(ForbiddenChoice) as info:
        check_user_options(profile_list, {"profile": "pytorch-cuda"}, catalog=example)
    assert info.value.log_message == (
        "user_options name the image 'pytorch-cuda', which is not in the user's profile list "
        "(it exists in the catalog, but the user's groups do not allow it)"
    )
    with pytest.raises(ForbiddenChoice) as info:
        check_user_options(profile_list, {"profile": "nope"}, catalog=example)
    assert info.value.log_message.endswith("(it does not exist in the catalog)")
    # without the catalog: the same refusal, less detail
    with pytest.raises(ForbiddenChoice) as info:
        check_user_options(profile_list, {"profile": "nope", "size": "small"})
    assert info.value.log_message == (
        "user_options name the image 'nope', which is not in the user's profile list"
    )


def test_user_message_never_lists_other_images(example):
    profile_list = build_profile_list(example, USERS["dave"])
    with pytest.raises(ForbiddenChoice) as info:
        check_user_options(profile_list, {"profile": "kubeflow-pytorch-cuda"}, catalog=example)
    for other in ("scipy", "datascience", "pytorch-cuda", "Options include"):
        assert other not in info.value.user_message.replace("kubeflow-pytorch-cuda", "")


def test_empty_profile_list_is_refused():
    with pytest.raises(ForbiddenChoice) as info:
        check_user_options([], {})
    assert info.value.status == 403
    assert info.value.user_message == (
        "No server environment is available to your account. Please contact your administrator."
    )


@pytest.mark.parametrize(
    "user_options",
    [
        {},
        None,
        {"profile": ""},
        {"profile": "scipy"},
        {"profile": "scipy", "size": "medium"},
        {"profile": "scipy", "size": ""},
        {"profile": "kubeflow-scipy", "gpu": "none"},  # "no GPU" where none is offered: fine
        {"profile": "scipy", "unrelated-extension-key": "x"},  # not kubespawner's: ignored
    ],
)
def test_allowed_choices_pass(example, user_options):
    check_user_options(build_profile_list(example, USERS["erin"]), user_options, catalog=example)


def test_strict_mode_refuses_every_unknown_key(example):
    profile_list = build_profile_list(example, USERS["erin"])
    with pytest.raises(ForbiddenChoice) as info:
        check_user_options(profile_list, {"profile": "scipy", "unrelated": "x"}, strict=True)
    assert info.value.user_message == "The option 'unrelated' cannot be set."


# ---------------------------------------------------------------------------
# What was selected
# ---------------------------------------------------------------------------


def test_resolve_selection_defaults_and_choices(example):
    alice = build_profile_list(example, USERS["alice"])
    selection = resolve_selection(example, alice, {})
    assert (selection.profile, selection.size.slug, selection.gpu.slug) == (
        "pytorch-cuda",
        "large",
        "nvidia-mig-1g-10gb",
    )
    assert selection.image.security.extra_supplemental_gids == (100,)

    selection = resolve_selection(
        example, alice, {"profile": "kubeflow-pytorch-cuda", "size": "xlarge", "gpu": "nvidia-a100"}
    )
    assert (
        selection.image.image
        == "registry.example.org/notebooks/jupyter-pytorch-cuda-full-hub:v1.9.2"
    )
    assert selection.image.security.needs_writable_run is True
    assert (selection.size.slug, selection.gpu.resource, selection.gpu.count) == (
        "xlarge",
        "nvidia.com/gpu",
        1,
    )

    selection = resolve_selection(example, alice, {"profile": "scipy"})
    assert selection.gpu is None and selection.size.slug == "large"


def test_resolve_selection_enforces(example):
    with pytest.raises(ForbiddenChoice):
        resolve_selection(
            example, build_profile_list(example, USERS["dave"]), {"profile": "pytorch-cuda"}
        )


def test_resolve_selection_with_a_list_from_another_catalog(example):
    old_list = build_profile_list(example, USERS["dave"])
    new_catalog = load_data(
        {"version": 1, "images": [{"slug": "other", "display_name": "Other", "image": "x/other:1"}]}
    )
    with pytest.raises(ForbiddenChoice) as info:
        resolve_selection(new_catalog, old_list, {"profile": "scipy"})
    assert info.value.status == 409
    assert "reload the page" in info.value.user_message


# ---------------------------------------------------------------------------
# Properties over random catalogs and group sets
# ---------------------------------------------------------------------------

GROUPS = ["physics", "chemistry", "gpu-users", "staff", "biology"]
group_lists = st.one_of(
    st.none(),
    st.just(["*"]),
    st.lists(st.sampled_from(GROUPS), min_size=1, max_size=3, unique=True),
)


@st.composite
def random_catalogs(draw):
    n_sizes = draw(st.integers(0, 3))
    n_gpus = draw(st.integers(0, 3))
    sizes = [f"s{i}" for i in range(n_sizes)]
    gpus = [f"g{i}" for i in range(n_gpus)]

    def with_groups(entry):
        groups = draw(group_lists)
        if groups is not None:
            entry["allowed_groups"] = groups
        return entry

    images = []
    for i in range(draw(st.integers(1, 6))):
        image = with_groups(
            {
                "slug": f"i{i}",
                "display_name": f"Image {i}",
                "image": f"x/i{i}:1",
                "hidden": draw(st.booleans()) and i > 0,
            }
        )
        if sizes and draw(st.booleans()):
            image["sizes"] = draw(st.lists(st.sampled_from(sizes), min_size=1, unique=True))
        if draw(st.booleans()):
            image["gpus"] = draw(
                st.lists(st.sampled_from(gpus + [NO_GPU]), min_size=1, unique=True)
            )
        images.append(image)
    data = {
        "version": 1,
        "images": images,
        "sizes": [
            with_groups({"slug": s, "display_name": s, "cpu_guarantee": 1, "mem_guarantee": "1Gi"})
            for s in sizes
        ],
        "gpus": [
            with_groups({"slug": g, "display_name": g, "resource": f"example.com/{g}"})
            for g in gpus
        ],
    }
    return load_data(data)


def _allowed(entry, groups) -> bool:
    return entry.allowed_groups is None or bool(entry.allowed_groups & set(groups))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_catalogs(), st.lists(st.sampled_from(GROUPS + ["nobody"]), max_size=4))
def test_no_profile_or_choice_outside_the_users_groups(c, groups):
    profile_list = build_profile_list(c, groups)
    if profile_list:
        assert sum(bool(p.get("default")) for p in profile_list) == 1
    for profile in profile_list:
        image = c.image(profile[META]["image"])
        assert not image.hidden
        assert _allowed(image, groups)
        options = profile.get("profile_options", {})
        for slug in options.get("size", {}).get("choices", {}):
            assert _allowed(c.size(slug), groups)
            assert image.sizes is None or slug in image.sizes
        for slug in options.get("gpu", {}).get("choices", {}):
            if slug != NO_GPU:
                assert _allowed(c.gpu(slug), groups)
            assert image.gpus is None or slug in image.gpus
        for option in options.values():
            assert sum(bool(ch.get("default")) for ch in option["choices"].values()) == 1
        # every offered combination is accepted, and resolves to those very entries
        for size in options.get("size", {}).get("choices", {None: None}):
            for gpu in options.get("gpu", {}).get("choices", {None: None}):
                user_options = {"profile": profile["slug"], "size": size, "gpu": gpu}
                check_user_options(profile_list, user_options, catalog=c)
                selection = resolve_selection(c, profile_list, user_options)
                assert selection.image is image
                assert (selection.size.slug if selection.size else None) == size
                assert (selection.gpu.slug if selection.gpu else None) == (
                    None if gpu in (None, NO_GPU) else gpu
                )
    # everything not offered is refused
    offered = {p["slug"] for p in profile_list}
    for image in c.images:
        if image.slug not in offered:
            with pytest.raises(ForbiddenChoice):
                check_user_options(profile_list, {"profile": image.slug}, catalog=c)
    for profile in profile_list:
        options = profile.get("profile_options", {})
        for size in c.sizes:
            if size.slug not in options.get("size", {}).get("choices", {}):
                with pytest.raises(ForbiddenChoice):
                    check_user_options(
                        profile_list, {"profile": profile["slug"], "size": size.slug}
                    )


# -- catalog text in kubespawner's real spawn form (issue 15, class 4) ------------------------

XSS_PAYLOADS = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    '"><svg/onload=alert(1)>',
    "' onmouseover='alert(1)",
    "</option><option value=evil>Evil",
    "</h3><iframe src=javascript:alert(1)>",
    "&lt;b&gt;entities&lt;/b&gt;",
    "<b>bold</b> & more",
    "<IMG SRC=x ONERROR=alert(1)>",
    "\u003cimg src=x onerror=alert(1)\u003e",
]
TEXT_FIELDS = [
    "image.display_name",
    "image.description",
    "image.labels",
    "size.display_name",
    "gpu.display_name",
    "combination.display_name",
    "combination.description",
]


def _form_catalog(field: str, text: str) -> dict:
    image = {
        "slug": "scipy",
        "display_name": "SciPy",
        "image": "quay.io/jupyter/scipy-notebook:2025-01-01",
    }
    size = {"slug": "small", "display_name": "Small", "cpu_guarantee": 1, "mem_guarantee": "1Gi"}
    gpu = {"slug": "a100", "display_name": "A100", "resource": "nvidia.com/gpu"}
    combo = {"slug": "combo", "display_name": "Combo", "image": "scipy", "size": "small"}
    kind, key = field.split(".")
    target = {"image": image, "size": size, "gpu": gpu, "combination": combo}[kind]
    target[key] = {"stack": text} if key == "labels" else text
    data = {"version": 1, "images": [image], "sizes": [size], "gpus": [gpu]}
    if kind == "combination":
        data.update(mode="combinations", profiles=[combo])
    return data


class _Structure(HTMLParser):
    """The form's elements and attribute names, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, tuple[str, ...]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, tuple(sorted(name for name, _ in attrs))))

    def handle_data(self, data):
        self.text.append(data)


async def _render_form(catalog: dict) -> _Structure:
    """The form exactly as the hub renders it: kubespawner's own template and code."""
    cfg = Config()
    cfg.KubeSpawner.profile_list = []
    cfg.NBSpawner.directory_class = "static"
    cfg.StaticDirectory.users = {"alice": {"uid": 2001, "gid": 3001, "home": "/home/alice"}}
    cfg.NBSpawner.catalog = catalog
    with offline_kubeconfig():
        spawner = make_spawner(HubConfig(cfg, "test"), "alice")
    html_text = await spawner._render_options_form_dynamically(spawner)
    parsed = _Structure()
    parsed.feed(html_text)
    return parsed


@pytest.mark.parametrize("payload", XSS_PAYLOADS, ids=range(len(XSS_PAYLOADS)))
@pytest.mark.parametrize("field", TEXT_FIELDS)
async def test_catalog_text_is_text_in_the_spawn_form(field, payload):
    """The payload adds no element or attribute to kubespawner's form and reads as written."""
    safe = await _render_form(_form_catalog(field, "plain words"))
    hostile = await _render_form(_form_catalog(field, payload))
    assert hostile.elements == safe.elements
    assert payload in "".join(hostile.text)
