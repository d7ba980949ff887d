"""nbspawner.checks: every check's OK/WARN/FAIL line, with a static directory (no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from nbspawner.checks import run_checks
from nbspawner.hubconfig import load_hub_config
from nbspawner.offline import example_config, example_file

REPO = Path(__file__).resolve().parents[2]
BAD_CATALOG = REPO / "tests" / "data" / "catalogs" / "bad-slug.yaml"


def values(**nbspawner: Any) -> dict[str, Any]:
    return {
        "hub": {
            "config": {
                "JupyterHub": {"spawner_class": "nbspawner"},
                "NBSpawner": {
                    "directory_class": "static",
                    "catalog_file": example_file("catalog.yaml"),
                    **nbspawner,
                },
                "StaticDirectory": {"path": example_file("directory.yaml")},
            }
        },
        "singleuser": {
            "storage": {"type": "none"},
            "cloudMetadata": {"blockWithIptables": False},
        },
    }


async def check(tmp_path: Path, data: dict[str, Any]) -> tuple[bool, list[str]]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return await run_checks(load_hub_config(path))


def fails(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("FAIL")]


async def test_bundled_example_passes():
    ok, lines = await run_checks(example_config())
    assert ok, lines
    assert lines[-1] == "nbspawner check: all checks passed"
    assert "OK   directory: static: 3 users in " in "\n".join(lines)
    # the example's data volumes are PVCs: nothing the "restricted" level would refuse
    assert not any(line.startswith("WARN") and "volume" in line for line in lines), lines


async def test_a_clean_configuration(tmp_path):
    ok, lines = await check(tmp_path, values())
    assert ok, lines
    # the test's configuration names files on this machine: said, not silent
    read_here = [
        f"WARN configuration: {example_file(name)} is read from this workstation (no --file "
        "maps it); the hub reads its own file at that path"
        for name in ("catalog.yaml", "directory.yaml")
    ]
    assert lines[1:3] == read_here
    del lines[1:3]
    assert lines[:4] == [
        f"OK   configuration: {tmp_path / 'config.yaml'}",
        "OK   JupyterHub.spawner_class is nbspawner",
        "OK   settings: every NBSpawner and directory setting is known",
        "OK   NBSpawner settings load (directory StaticDirectory, passwd hook init-container, "
        "Pod Security level restricted)",
    ]


async def test_unknown_settings_and_classes(tmp_path):
    data = values(home_volum={})
    data["hub"]["config"]["StaticDirectry"] = {"path": "x"}
    data["hub"]["config"]["StaticDirectory"]["pth"] = "x"
    ok, lines = await check(tmp_path, data)
    assert not ok
    assert sorted(fails(lines)) == [
        "FAIL settings: NBSpawner.home_volum is not a setting (did you mean "
        "NBSpawner.home_volume?); it is ignored",
        "FAIL settings: StaticDirectory.pth is not a setting (did you mean "
        "StaticDirectory.path?); it is ignored",
        "FAIL settings: there is no class 'StaticDirectry' (did you mean StaticDirectory?); "
        "its settings are ignored",
    ]
    assert lines[-1] == "nbspawner check: 3 problems found"


async def test_settings_that_do_not_load(tmp_path):
    ok, lines = await check(tmp_path, values(pod_security_level="strict"))
    assert not ok
    assert fails(lines)[0].startswith(
        "FAIL NBSpawner settings cannot be loaded: TraitError: The 'pod_security_level' trait"
    )


@pytest.mark.parametrize(
    ("home_volume", "level", "expected"),
    [
        (
            {"type": "nfs", "server": "nfs.example.org", "export_roots": ["/home"]},
            "restricted",
            "FAIL storage: NBSpawner.home_volume has type 'nfs', which Pod Security 'restricted' "
            "forbids",
        ),
        (
            {"type": "hostPath", "export_roots": ["/home"]},
            "baseline",
            "FAIL storage: NBSpawner.home_volume has type 'hostPath', which Pod Security "
            "'baseline' forbids",
        ),
        (
            {"type": "pvc", "claim_name": "homes"},
            "restricted",
            # refused when the setting is set (hub start), not only at the first spawn
            "FAIL NBSpawner.home_volume.export_roots is required for type pvc",
        ),
    ],
)
async def test_storage(tmp_path, home_volume, level, expected):
    ok, lines = await check(tmp_path, values(home_volume=home_volume, pod_security_level=level))
    assert not ok
    assert any(line.startswith(expected) for line in lines), lines


async def test_lower_level_allows_nfs(tmp_path):
    home = {"type": "nfs", "server": "nfs.example.org", "export_roots": ["/export/home"]}
    ok, lines = await check(tmp_path, values(home_volume=home, pod_security_level="baseline"))
    assert ok, lines
    assert "OK   storage: home from nfs nfs.example.org at /home/{username}, 0 data shares" in lines


async def test_chart_defaults_are_reported(tmp_path):
    data = values(home_volume={"type": "pvc", "claim_name": "homes", "export_roots": ["/x"]})
    del data["singleuser"]  # the chart's defaults: iptables init container, a PVC per user
    ok, lines = await check(tmp_path, data)
    assert not ok
    assert any(
        line.startswith("FAIL pod: the init container 'block-cloud-metadata' runs privileged")
        and line.endswith("z2jh: set singleuser.cloudMetadata.blockWithIptables: false")
        for line in lines
    )
    assert any(line.startswith("WARN storage: KubeSpawner also creates a PVC") for line in lines)


async def test_chart_home_without_fsgroup(tmp_path):
    data = values()
    data["singleuser"]["storage"] = {"type": "dynamic", "homeMountPath": "/home/jovyan"}
    ok, lines = await check(tmp_path, data)
    assert ok  # warnings only
    assert any(
        line.startswith("WARN storage: HOME is /home/{username} (NBSpawner.home_mount_path)")
        for line in lines
    )
    assert any(line.endswith("set NBSpawner.keep_fs_gid: true") for line in lines)


async def test_invalid_catalog(tmp_path):
    ok, lines = await check(tmp_path, values(catalog_file=str(BAD_CATALOG)))
    assert not ok
    index = lines.index(
        f"FAIL catalog: Catalog {BAD_CATALOG} is invalid (2 problems); fix these problems:"
    )
    assert lines[index + 1].startswith("       images[0] (slug 'SciPy').slug: 'SciPy' is not")


async def test_missing_catalog_and_directory_file(tmp_path):
    data = values(catalog_file="/usr/local/etc/nbspawner/catalog.yaml")
    data["hub"]["config"]["StaticDirectory"]["path"] = "/usr/local/etc/nbspawner/directory.yaml"
    ok, lines = await check(tmp_path, data)
    assert not ok
    assert len(fails(lines)) == 2
    for line in fails(lines):
        assert "pass a local copy with --file MOUNTPATH=LOCALPATH" in line, line


async def test_inline_catalog_and_profile_list(tmp_path):
    catalog = {
        "version": 1,
        "images": [{"slug": "scipy", "display_name": "SciPy", "image": "quay.io/x/y:1"}],
    }
    ok, lines = await check(tmp_path, values(catalog_file="", catalog=catalog))
    assert ok, lines
    assert "OK   catalog: NBSpawner.catalog (inline): 1 image, 0 sizes, 0 GPU options" in "\n".join(
        lines
    )
    data = values()
    data["singleuser"]["profileList"] = [{"display_name": "x", "kubespawner_override": {}}]
    ok, lines = await check(tmp_path, data)
    assert ok, lines
    assert (
        "OK   catalog: not used, KubeSpawner.profile_list is set; "
        "NBSpawner.catalog_file/catalog are ignored"
    ) in lines


async def test_auth_state_backends_need_auth_state(tmp_path):
    data = values(directory_class="oidc")
    ok, lines = await check(tmp_path, data)
    assert not ok
    assert fails(lines) == [
        "FAIL directory: OIDCClaimsDirectory reads the authenticator's auth_state, which is off. "
        "Set enable_auth_state: true on the authenticator (e.g. "
        "hub.config.GenericOAuthenticator.enable_auth_state)"
    ]
    data["hub"]["config"]["GenericOAuthenticator"] = {"enable_auth_state": True}
    ok, lines = await check(tmp_path, data)
    assert ok, lines


async def test_identity_settings(tmp_path):
    ok, lines = await check(tmp_path, values(fallback_identity={"uid": 1000}))
    assert not ok
    assert (
        "FAIL NBSpawner.fallback_identity needs uid, gid and home and nothing else "
        "(unknown keys: [])"
    ) in lines
    for bad, message in [
        ({"uid": "02001"}, "uid: '02001' is not a plain decimal integer"),
        ({"gid": 100.0}, "gid: 100.0 is a number with a fraction part, not an id"),
        ({"gid": True}, "gid: True is a boolean, not an id"),
        ({"supplemental_gids": ["２００１"]}, "supplemental_gids[0]: '２００１' is not a plain"),
    ]:
        fallback = {"uid": 1000, "gid": 100, "home": "/home/{username}", **bad}
        ok, lines = await check(tmp_path, values(fallback_identity=fallback))
        assert not ok
        assert any(
            line.startswith(f"FAIL NBSpawner.fallback_identity.{message}") for line in lines
        ), lines
    fallback = {"uid": 1000, "gid": 100, "home": "/home/{username}"}
    ok, lines = await check(tmp_path, values(fallback_identity=fallback, passwd_hook="off"))
    assert ok, lines
    assert any(line.startswith("WARN NBSpawner.fallback_identity is set") for line in lines)
    assert any(line.startswith('WARN NBSpawner.passwd_hook is "off"') for line in lines)
    ok, lines = await check(tmp_path, values(default_groups={"users": 0}))
    assert not ok
    assert any(line.startswith("FAIL NBSpawner.default_groups must map") for line in lines)


async def test_spawner_class(tmp_path):
    data = values()
    data["hub"]["config"]["JupyterHub"]["spawner_class"] = "kubespawner.KubeSpawner"
    ok, lines = await check(tmp_path, data)
    assert ok
    assert any(line.startswith("WARN JupyterHub.spawner_class is 'kubespawner") for line in lines)


async def test_catalog_image_with_nfs_volume_warns_under_restricted(tmp_path):
    with open(example_file("catalog.yaml")) as f:  # noqa: ASYNC230 - a test fixture file
        catalog = yaml.safe_load(f)
    image = next(i for i in catalog["images"] if i["slug"] == "kubeflow-scipy")
    image["volumes"] = [
        {"name": "datasets", "nfs": {"server": "nfs.example.org", "path": "/export/datasets"}}
    ]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog, sort_keys=False))  # noqa: ASYNC240
    ok, lines = await check(tmp_path, values(catalog_file=str(path)))
    assert any(
        line.startswith("WARN catalog: image 'kubeflow-scipy' declares a 'nfs' volume")
        for line in lines
    ), lines


CONFIG_TEXT = """\
hub:
  config:
    JupyterHub: {{spawner_class: nbspawner}}
    NBSpawner:
      directory_class: static
      catalog_file: {catalog}
{nbspawner}
    StaticDirectory:
{static}
singleuser:
  storage: {{type: none}}
  cloudMetadata: {{blockWithIptables: false}}
"""


def config_text(nbspawner: str = "", static: str = "") -> str:
    if not static:
        static = f"      path: {example_file('directory.yaml')}"
    return CONFIG_TEXT.format(
        catalog=example_file("catalog.yaml"), nbspawner=nbspawner, static=static
    )


INLINE_USER = """\
      users:
        alice: {{uid: {uid}, gid: 3001, home: /export/home/alice}}"""


@pytest.mark.parametrize(
    "spelling,value",
    # YAML 1.1 reads 0o3721 as a string: refused all the same, without "YAML reads it as"
    [("02001", 1025), ("0x7d1", 2001), ("33:21", 2001), ("0o3721", None), ("2_001", 2001)],
)
async def test_config_yaml_ids_are_taken_as_written(tmp_path, spelling, value):
    """config.yaml is read with nbspawner's strict loader: an id YAML would read as another
    number is refused where it is written, in the inline directory and in every id setting."""
    cases = [
        (
            config_text(static=INLINE_USER.format(uid=spelling)),
            f"static: uid: {spelling!r} is not a plain decimal integer"
            + (f" (YAML reads it as {value})" if value is not None else ""),
        ),
        (
            config_text(nbspawner=f"      min_uid: {spelling}"),
            f"FAIL NBSpawner.min_uid: {spelling!r} is not a plain decimal integer"
            if value is not None
            else f"'min_uid' trait of a NBSpawner instance expected an int, not the str {spelling!r}",
        ),
        (
            config_text(nbspawner=f"      default_groups: {{users: {spelling}}}"),
            "FAIL NBSpawner.default_groups",
        ),
    ]
    for text, expected in cases:
        path = tmp_path / "config.yaml"
        path.write_text(text)
        ok, lines = await run_checks(load_hub_config(path))
        assert not ok, text
        assert any(expected in line for line in lines), (expected, lines)


async def test_config_yaml_with_a_duplicate_key_is_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(config_text(nbspawner="      min_uid: 1000\n      min_uid: 2000"))
    with pytest.raises(Exception) as info:
        load_hub_config(path)
    assert "min_uid" in str(info.value) and "line" in str(info.value)


# -- check --user: spawn users as the hub would (issue 22) ------------------------------------


async def test_without_users_the_check_says_it_checked_configuration_only(tmp_path):
    ok, lines = await check(tmp_path, values())
    assert ok, lines
    assert (
        "WARN no user was looked up: this checked the configuration only "
        "(add --user NAME to spawn users as the hub would)"
    ) in lines


@pytest.mark.parametrize(
    "settings,expected",
    [
        (
            {"home_roots": ["/nfs/homes"]},
            "FAIL user 'alice': the hub would refuse to spawn: static: home is outside the "
            "allowed roots (NBSpawner.home_roots)",
        ),
        (
            {"min_uid": 5000},
            "FAIL user 'alice': the hub would refuse to spawn: static: uid 2001 is outside the "
            "allowed range 5000..4294967293 (NBSpawner.min_uid, NBSpawner.max_uid)",
        ),
    ],
    ids=["home-roots-exclude-every-home", "min-uid-above-every-uid"],
)
async def test_check_user_fails_what_every_spawn_would_fail(tmp_path, settings, expected):
    """These configurations pass the configuration checks, yet every spawn fails."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(values(**settings)))
    ok, lines = await run_checks(load_hub_config(path))
    assert ok, lines  # configuration only: nothing looks wrong
    ok, lines = await run_checks(load_hub_config(path), ["alice"])
    assert not ok
    assert expected in lines, lines


async def test_check_user_reports_identity_choice_and_pod(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(values()))
    ok, lines = await run_checks(load_hub_config(path), ["alice", "bob", "mallory"])
    assert not ok
    assert (
        "OK   user 'alice': uid 2001, gid 3001, groups gpu-users 3003, physics 3001, home "
        "/export/home/alice (from static); default choice: image pytorch-cuda, size large, "
        "gpu nvidia-mig-1g-10gb; pod jupyter-alice builds (1 container(s), 1 init container(s))"
    ) in lines
    assert any(line.startswith("OK   user 'bob': uid 2002") for line in lines)
    assert (
        "FAIL user 'mallory': the hub would refuse to spawn: static: user 'mallory' is not in "
        "StaticDirectory.users or .path"
    ) in lines
    assert lines[-1] == "nbspawner check: 1 problem found"


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "ldpa",
            "FAIL NBSpawner.directory_class: 'ldpa' is not a directory backend; did you mean "
            "'ldap'? the names are chain, http, ldap, ldapauth, oidc, static, or give a class by "
            "its import path (package.module.Class)",
        ),
        (
            "statik",
            "FAIL NBSpawner.directory_class: 'statik' is not a directory backend; did you mean "
            "'static'? the names are chain, http, ldap, ldapauth, oidc, static, or give a class "
            "by its import path (package.module.Class)",
        ),
        (
            "site.backends.Missing",
            "FAIL NBSpawner.directory_class: 'site.backends.Missing' could not be imported as a "
            "Directory class (check the module path and that the package is installed in the "
            "hub); the built-in names are chain, http, ldap, ldapauth, oidc, static",
        ),
    ],
)
async def test_unknown_directory_class_lists_the_names(tmp_path, name, expected):
    ok, lines = await check(tmp_path, values(directory_class=name))
    assert not ok
    assert fails(lines) == [expected]


def write_typo_catalog(tmp_path: Path) -> None:
    catalog = yaml.safe_load(Path(example_file("catalog.yaml")).read_text())
    catalog["images"][0]["allowed_groups"] = ["phyiscs"]  # the typo an admin makes
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog, sort_keys=False))


async def test_check_users_warns_about_groups_no_checked_user_has(tmp_path):
    ok, lines = await run_checks(example_config(), ["alice", "bob", "carol"])
    assert ok and not [line for line in lines if "no checked user is in" in line]
    write_typo_catalog(tmp_path)
    ok, lines = await check(tmp_path, values(catalog_file=str(tmp_path / "catalog.yaml")))
    assert ok  # nothing is wrong with the configuration as such...
    ok, lines = await run_checks(
        load_hub_config(tmp_path / "config.yaml"), ["alice", "bob", "carol"]
    )
    assert ok
    assert [line for line in lines if "no checked user is in" in line] == [
        "WARN catalog: no checked user is in 'phyiscs' (named by allowed_groups or defaults): a "
        "misspelt group makes what it allows unreachable for everyone; check with a user of "
        "each group (checked: 'alice', 'bob', 'carol')"
    ]
