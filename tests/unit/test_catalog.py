"""nbspawner.catalog: loading, validation messages, objects, hot reload."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import logging
import os
import re
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from nbspawner import catalog as catalog_module
from nbspawner import watch as watch_module
from nbspawner.catalog import (
    CatalogFile,
    check_file,
    check_image_reference,
    format_bytes,
    load,
    load_data,
    loads,
    parse_quantity,
    validate,
)
from nbspawner.catalog import schema as catalog_schema_module
from nbspawner.errors import CatalogError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "nbspawner" / "examples" / "catalog.yaml"
BAD_DIR = REPO / "tests" / "data" / "catalogs"
SCHEMA = REPO / "nbspawner" / "schemas" / "catalog.schema.json"

_EXPECT_RE = re.compile(r"^# (error|warning): (.+?) :: (.+)$")


def expectations(path: Path) -> dict[str, list[tuple[str, str]]]:
    expected: dict[str, list[tuple[str, str]]] = {"error": [], "warning": []}
    for line in path.read_text().splitlines():
        match = _EXPECT_RE.match(line)
        if match:
            expected[match[1]].append((match[2], match[3]))
    return expected


def assert_problems(actual: list[tuple[str, str]], expected: list[tuple[str, str]]) -> None:
    """Exactly the documented problems: same count, each location exact, message contains text."""
    unmatched = list(actual)
    for loc, text in expected:
        hit = next((p for p in unmatched if p[0] == loc and text in p[1]), None)
        assert hit is not None, f"no problem at {loc!r} containing {text!r}; got {actual}"
        unmatched.remove(hit)
    assert not unmatched, f"undocumented problems: {unmatched}"


BAD_FILES = sorted(p for p in BAD_DIR.glob("*.yaml") if not p.name.startswith("ok-"))
OK_FILES = sorted(BAD_DIR.glob("ok-*.yaml"))


def test_every_bad_file_documents_its_problems():
    assert len(BAD_FILES) >= 20
    for path in BAD_FILES:
        assert expectations(path)["error"], f"{path.name} documents no expected error"


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_bad_catalog_reports_documented_problems(path: Path):
    if path.name == "yaml-syntax.yaml" and not yaml.__with_libyaml__:
        pytest.skip("the documented message is libyaml's")
    with pytest.raises(CatalogError) as info:
        load(path)
    assert_problems(info.value.problems, expectations(path)["error"])
    # the exception's log message names the file and starts with the first problem
    first_loc, first_msg = info.value.problems[0]
    assert str(path) in info.value.log_message
    assert f"{first_loc}: {first_msg}" in info.value.log_message


@pytest.mark.parametrize("path", OK_FILES, ids=lambda p: p.stem)
def test_catalog_with_warnings_loads_and_reports_them(path: Path):
    catalog = load(path)
    assert_problems(list(catalog.warnings), expectations(path)["warning"])


def test_example_catalog_is_valid_without_warnings():
    catalog = load(EXAMPLE)
    assert catalog.warnings == ()
    assert catalog.mode == "choices"
    assert catalog.max_gpus == 4
    slugs = [i.slug for i in catalog.images]
    for expected in (
        "kubeflow-scipy",
        "kubeflow-pytorch",
        "kubeflow-pytorch-cuda",
        "kubeflow-tensorflow",
        "kubeflow-tensorflow-cuda",
        "kubeflow-codeserver",
        "kubeflow-rstudio",
        "scipy",
        "datascience",
        "pytorch-cuda",
    ):
        assert expected in slugs
    assert [s.slug for s in catalog.sizes] == ["small", "medium", "large", "xlarge"]
    assert {g.resource for g in catalog.gpus} == {
        "nvidia.com/gpu",
        "nvidia.com/mig-1g.10gb",
        "amd.com/gpu",
    }
    # Kubeflow images declare their s6-overlay needs as data
    for slug in slugs:
        image = catalog.image(slug)
        assert image.security.needs_writable_run == slug.startswith("kubeflow-"), slug
    assert catalog.image("kubeflow-rstudio").default_url == "/rstudio/"
    assert catalog.image("kubeflow-codeserver").default_url == "/vscode/"
    assert catalog.image("scipy").default_url is None
    assert catalog.image("scipy").security.extra_supplemental_gids == (100,)


def test_example_catalog_validates_against_the_shipped_schema_directly():
    """Editors use the raw schema file: it must accept the example on its own."""
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(EXAMPLE.read_text()))


def test_schema_documents_every_field():
    schema = json.loads(SCHEMA.read_text())
    for name in ("image", "size", "gpu", "combination"):
        for key, prop in schema["$defs"][name]["properties"].items():
            resolved = prop
            if "$ref" in prop:
                resolved = schema["$defs"][prop["$ref"].rsplit("/", 1)[1]]
            assert resolved.get("description"), f"$defs.{name}.{key} has no description"
    for key, prop in schema["properties"].items():
        assert prop.get("description"), f"top-level {key} has no description"
    assert schema["additionalProperties"] is False
    for name in ("image", "size", "gpu", "default", "combination", "volume", "toleration"):
        assert schema["$defs"][name]["additionalProperties"] is False, name


def test_sizes_are_parsed_into_numbers_kubespawner_accepts():
    catalog = load(EXAMPLE)
    small = catalog.size("small")
    assert small.cpu_guarantee == 0.5
    assert small.cpu_limit == 1.0
    assert small.mem_guarantee == 2**30
    assert small.mem_limit == 2 * 2**30
    data = yaml.safe_load(EXAMPLE.read_text())
    data["sizes"][0]["mem_limit"] = "2G"  # Kubernetes: decimal, unlike JupyterHub's "2G"
    assert load_data(data).size("small").mem_limit == 2_000_000_000


def test_gpus_hidden_and_deprecated_are_parsed():
    catalog = load(EXAMPLE)
    a100 = catalog.gpu("nvidia-a100")
    assert a100.count == 1
    assert dict(a100.node_selector) == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert [dict(t) for t in a100.tolerations] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert a100.allowed_groups == frozenset({"gpu-users"})
    assert catalog.image("scipy").allowed_groups is None  # everyone
    assert catalog.image("scipy-next").hidden is True
    old = catalog.image("scipy-2024-04")
    assert old.deprecated is True
    assert old.deprecation_message.startswith('Use "SciPy" instead')
    assert [(d.group, d.image) for d in catalog.defaults][0] == ("gpu-users", "pytorch-cuda")


def test_security_block_is_plain_data_the_passwd_hook_reads():
    data = yaml.safe_load(GOOD)
    data["images"][0]["security"] = {
        "needs_writable_run": True,
        "read_only_root": True,
        "extra_supplemental_gids": [100, 1500],
        "has_shell": False,
    }
    security = load_data(data).images[0].security
    assert security == catalog_module.Security(
        needs_writable_run=True,
        read_only_root=True,
        extra_supplemental_gids=(100, 1500),
        has_shell=False,
    )
    assert load_data(yaml.safe_load(GOOD)).images[0].security == catalog_module.Security()
    # the passwd hook takes the Security object as it is
    from nbspawner.passwd_hook import needs_dict

    assert needs_dict(security) == {
        "has_shell": False,
        "needs_writable_run": True,
        "read_only_root": True,
        "extra_supplemental_gids": (100, 1500),
    }


def test_catalog_objects_are_immutable():
    catalog = load(EXAMPLE)
    image = catalog.image("kubeflow-scipy")
    with pytest.raises(dataclasses.FrozenInstanceError):
        image.image = "evil:1"  # type: ignore[misc]
    with pytest.raises(TypeError):
        image.env["EXTRA"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        image.volumes[0]["persistentVolumeClaim"]["readOnly"] = False  # type: ignore[index]
    with pytest.raises(AttributeError):
        catalog.images.append(image)  # type: ignore[attr-defined]


def test_plain_gives_a_mutable_copy_the_catalog_does_not_see():
    catalog = load(EXAMPLE)
    image = catalog.image("kubeflow-scipy")
    volumes = catalog_module.plain(image.volumes)
    assert type(volumes) is list and type(volumes[0]) is dict
    volumes[0]["name"] = "changed"
    assert image.volumes[0]["name"] != "changed"
    assert json.loads(json.dumps(volumes))[0]["name"] == "changed"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("500m", Decimal("0.5")),
        (2, Decimal(2)),
        (1.5, Decimal("1.5")),
        ("1.5", Decimal("1.5")),
        ("4Gi", Decimal(4 * 2**30)),
        ("512Mi", Decimal(512 * 2**20)),
        ("512M", Decimal(512_000_000)),
        ("8G", Decimal(8_000_000_000)),
        ("1e9", Decimal(10**9)),
        ("100k", Decimal(100_000)),
        ("1Ti", Decimal(2**40)),
        (".5", Decimal("0.5")),
    ],
)
def test_parse_quantity(text, expected):
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    "text", ["4GB", "2 cores", "", "Gi", "1.2.3", "4gi", "1Mb", True, None, [1], float("nan")]
)
def test_parse_quantity_refuses(text):
    with pytest.raises(ValueError):
        parse_quantity(text)


@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"]),
)
def test_parse_quantity_matches_kubernetes_suffixes(number, suffix):
    factor = {
        "": 1,
        "k": 10**3,
        "M": 10**6,
        "G": 10**9,
        "T": 10**12,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
    }[suffix]
    value = parse_quantity(f"{number}{suffix}")
    assert value == number * factor
    # format_bytes gives back a quantity that parses to the same number of bytes
    assert parse_quantity(format_bytes(int(value))) == value


@pytest.mark.parametrize(
    "ref",
    [
        "quay.io/jupyter/scipy-notebook:2024-09-30",
        "jupyter/scipy-notebook:2024-09-30",
        "ubuntu:22.04",
        "localhost:5000/notebooks/scipy:v1",
        "registry.example.org:443/a/b/c:v1.9.2",
        "docker.io/kubeflownotebookswg/jupyter-scipy:v1.9.2",
        "quay.io/jupyter/scipy-notebook@sha256:" + "a" * 64,
        "quay.io/jupyter/scipy-notebook:2024-09-30@sha256:" + "0123456789abcdef" * 4,
        "quay.io/jupyter/pytorch-notebook:cuda12-2024-09-30",
    ],
)
def test_valid_image_references(ref):
    assert check_image_reference(ref) == (None, None)


@pytest.mark.parametrize(
    "ref, message",
    [
        ("quay.io/jupyter/scipy-notebook", "has no tag or digest"),
        ("Jupyter/scipy:1", "repository names are lowercase"),
        ("quay.io/jupyter/scipy@sha256:abc", "malformed digest"),
        ("quay.io/jupyter/scipy:1 ", "not a valid image reference"),
        ("quay.io/jupyter//scipy:1", "not a valid image reference"),
        ("quay.io/jupyter/scipy:", "malformed tag"),
        ("-bad.example.org/x/y:1", "malformed registry host"),
        ("bad_host.example.org/x:1", "malformed registry host"),
        ("", "not a valid image reference"),
    ],
)
def test_invalid_image_references(ref, message):
    error, warning = check_image_reference(ref)
    assert error is not None and message in error
    assert warning is None


def test_latest_tag_is_a_warning():
    error, warning = check_image_reference("quay.io/jupyter/scipy-notebook:latest")
    assert error is None
    assert "uses the tag 'latest'" in warning
    # pinned by digest: the tag does not matter
    assert check_image_reference("x/y:latest@sha256:" + "b" * 64) == (None, None)


def test_validate_reports_schema_and_semantic_problems_together():
    data = {
        "version": 1,
        "images": [
            {"slug": "ok", "display_name": "OK", "image": "x/y"},  # semantic: no tag
            {"slug": "bad", "display_name": 5, "image": "x/y:1"},  # schema: not a string
        ],
        "sizes": [
            {
                "slug": "s",
                "display_name": "S",
                "cpu_guarantee": 2,
                "cpu_limit": 1,
                "mem_guarantee": "1Gi",
            }
        ],
    }
    errors, warnings = validate(data)
    assert errors == [
        (
            "images[1] (slug 'bad').display_name",
            'must be a string, not an integer (quote it in YAML: "5")',
        ),
        (
            "images[0] (slug 'ok').image",
            "'x/y' has no tag or digest; pin a version such as ':2024-10-07' or '@sha256:...'",
        ),
        (
            "sizes[0] (slug 's').cpu_limit",
            "1 is below cpu_guarantee 2; Kubernetes refuses a limit below the request",
        ),
    ]
    assert warnings == []


def test_a_broken_entry_does_not_cascade_into_missing_slug_errors():
    data = {
        "version": 1,
        "images": [{"slug": "scipy", "display_name": "SciPy", "image": "x/y:1", "hidden": "no"}],
        "defaults": {"*": {"image": "scipy"}},
    }
    errors, _ = validate(data)
    assert errors == [("images[0] (slug 'scipy').hidden", "must be true or false, not a string")]


@pytest.mark.parametrize(
    "data, problem",
    [
        (None, ("(top level)", "must be a mapping, not empty")),
        ([], ("(top level)", "must be a mapping, not a list")),
        ({"version": 1, "images": "scipy"}, ("images", "must be a list, not a string")),
    ],
)
def test_validate_survives_wrong_document_shapes(data, problem):
    errors, _ = validate(data)
    assert problem in errors


def test_inline_data_and_text_load_like_files():
    text = EXAMPLE.read_text()
    from_text = loads(text, source="hub.config")
    from_data = load_data(yaml.safe_load(text))
    assert from_text.source == "hub.config"
    assert [i.slug for i in from_text.images] == [i.slug for i in from_data.images]
    assert from_data.source == "<inline>"


def test_missing_file_says_what_to_check(tmp_path):
    with pytest.raises(CatalogError) as info:
        load(tmp_path / "nope.yaml")
    assert info.value.problems == [("(file)", "file not found")]
    assert "does not exist" in info.value.log_message
    assert "hub.extraFiles" in info.value.log_message


def test_catalog_error_user_message_is_generic():
    with pytest.raises(CatalogError) as info:
        loads("version: 1\nimages: []\n")
    assert "images" not in info.value.user_message
    assert info.value.status == 500


def test_check_file_report_for_the_cli(tmp_path):
    ok, text = check_file(EXAMPLE)
    assert ok is True
    assert text == f"{EXAMPLE}: OK (13 images, 4 sizes, 4 GPU options, mode choices)"

    ok, text = check_file(BAD_DIR / "limit-below-guarantee.yaml")
    assert ok is False
    lines = text.splitlines()
    assert lines[0] == f"{BAD_DIR / 'limit-below-guarantee.yaml'}: INVALID, 2 errors"
    assert lines[1] == (
        "  ERROR    sizes[0] (slug 'medium').cpu_limit: 1 is below cpu_guarantee 2; "
        "Kubernetes refuses a limit below the request"
    )
    assert len(lines) == 3

    ok, text = check_file(BAD_DIR / "ok-warnings.yaml")
    assert ok is True
    assert text.splitlines()[0].endswith(", 8 warnings")
    assert "  WARNING  defaults.phyiscs: no allowed_groups names the group 'phyiscs'" in text

    ok, text = check_file(tmp_path / "missing.yaml")
    assert ok is False
    assert "(file): file not found" in text


# ---------------------------------------------------------------------------
# Hot reload
# ---------------------------------------------------------------------------

GOOD = """\
version: 1
images:
  - {slug: scipy, display_name: SciPy, image: "quay.io/jupyter/scipy-notebook:2024-09-30"}
"""
GOOD_2 = """\
version: 1
images:
  - {slug: scipy, display_name: SciPy, image: "quay.io/jupyter/scipy-notebook:2024-10-07"}
  - {slug: r, display_name: R, image: "quay.io/jupyter/r-notebook:2024-10-07"}
"""
BAD = """\
version: 1
images:
  - {slug: scipy, display_name: SciPy, image: "quay.io/jupyter/scipy-notebook"}
"""


def reloads(outcome: str) -> float:
    return REGISTRY.get_sample_value("nbspawner_catalog_reloads_total", {"outcome": outcome}) or 0.0


def replace(path: Path, text: str) -> None:
    """Write like an editor or a ConfigMap update: new inode, atomic rename."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_reload_picks_up_an_edit(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(GOOD)
    before = reloads("ok")
    catalog_file = CatalogFile(path)
    first = catalog_file.get()
    assert [i.image for i in first.images] == ["quay.io/jupyter/scipy-notebook:2024-09-30"]
    assert catalog_file.get() is first  # unchanged file: same object, no reload
    replace(path, GOOD_2)
    second = catalog_file.get()
    assert second is not first
    assert [i.slug for i in second.images] == ["scipy", "r"]
    assert reloads("ok") == before + 2


def test_reload_sees_an_in_place_edit_of_the_same_size(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(GOOD)
    catalog_file = CatalogFile(path)
    catalog_file.get()
    edited = GOOD.replace("2024-09-30", "2024-09-23")
    assert len(edited) == len(GOOD)
    with open(path, "w") as f:  # same inode, same size: only the mtime changes
        f.write(edited)
    st_before = os.stat(path)
    os.utime(path, ns=(st_before.st_atime_ns, st_before.st_mtime_ns + 1_000_000))
    assert catalog_file.get().images[0].image.endswith(":2024-09-23")


def test_bad_edit_keeps_the_last_good_catalog_and_logs_why(tmp_path, caplog):
    path = tmp_path / "catalog.yaml"
    path.write_text(GOOD)
    catalog_file = CatalogFile(path)
    good = catalog_file.get()
    invalid_before = reloads("invalid")
    replace(path, BAD)
    with caplog.at_level(logging.WARNING, logger="nbspawner.catalog"):
        assert catalog_file.get() is good
        assert catalog_file.get() is good  # the same bad file is reported once
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].getMessage() == (
        f"Catalog {path} was changed but is invalid; still using the previous catalog. "
        f"Fix these problems (check with `nbspawner catalog check {path}`):\n"
        "  images[0] (slug 'scipy').image: 'quay.io/jupyter/scipy-notebook' has no tag or digest; "
        "pin a version such as ':2024-10-07' or '@sha256:...'"
    )
    assert reloads("invalid") == invalid_before + 1
    assert catalog_file.last_error is not None
    assert catalog_file.last_error.problems[0][0] == "images[0] (slug 'scipy').image"

    # fixing the file brings the new catalog and clears the error
    replace(path, GOOD_2)
    assert [i.slug for i in catalog_file.get().images] == ["scipy", "r"]
    assert catalog_file.last_error is None


def test_first_load_failure_raises(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(BAD)
    invalid_before = reloads("invalid")
    catalog_file = CatalogFile(path)
    with pytest.raises(CatalogError) as info:
        catalog_file.get()
    assert info.value.problems[0][0] == "images[0] (slug 'scipy').image"
    assert reloads("invalid") == invalid_before + 1
    # once fixed, the next call loads it
    replace(path, GOOD)
    assert catalog_file.get().images[0].slug == "scipy"


def test_missing_file_at_start_raises_and_later_disappearance_keeps_catalog(tmp_path, caplog):
    path = tmp_path / "catalog.yaml"
    with pytest.raises(CatalogError, match="does not exist"):
        CatalogFile(path).get()
    path.write_text(GOOD)
    catalog_file = CatalogFile(path)
    good = catalog_file.get()
    path.unlink()
    with caplog.at_level(logging.WARNING, logger="nbspawner.catalog"):
        assert catalog_file.get() is good
        assert catalog_file.get() is good
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        f"Catalog {path} disappeared; still using the previous catalog. "
        "Is the volume still mounted?"
    ]
    path.write_text(GOOD_2)
    assert len(catalog_file.get().images) == 2


def test_kubernetes_style_symlink_swap_is_seen(tmp_path):
    """A mounted ConfigMap: catalog.yaml -> ..data/catalog.yaml, ..data -> ..<timestamp>."""
    mount = tmp_path / "mount"
    mount.mkdir()
    (mount / "..v1").mkdir()
    (mount / "..v1" / "catalog.yaml").write_text(GOOD)
    (mount / "..data").symlink_to("..v1")
    (mount / "catalog.yaml").symlink_to("..data/catalog.yaml")
    catalog_file = CatalogFile(mount / "catalog.yaml")
    assert len(catalog_file.get().images) == 1
    (mount / "..v2").mkdir()
    (mount / "..v2" / "catalog.yaml").write_text(GOOD_2)
    (mount / "..data_tmp").symlink_to("..v2")
    os.replace(mount / "..data_tmp", mount / "..data")
    assert len(catalog_file.get().images) == 2


def test_check_interval_limits_stat_calls(tmp_path, monkeypatch):
    path = tmp_path / "catalog.yaml"
    path.write_text(GOOD)
    now = [100.0]
    catalog_file = CatalogFile(path, check_interval=30, clock=lambda: now[0])
    first = catalog_file.get()
    stats = []
    real_stat = os.stat
    monkeypatch.setattr(watch_module.os, "stat", lambda p, **kw: stats.append(p) or real_stat(p))
    replace(path, GOOD_2)
    for t in (110.0, 125.0, 129.9):
        now[0] = t
        assert catalog_file.get() is first
    assert stats == []  # no stat before 30 s have passed
    now[0] = 130.0
    assert len(catalog_file.get().images) == 2
    assert stats == [path]
    now[0] = 140.0
    catalog_file.get()
    assert stats == [path]


async def test_aget_reloads_in_a_worker_thread(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(GOOD)
    catalog_file = CatalogFile(path)
    first = await catalog_file.aget()
    replace(path, GOOD_2)
    # concurrent callers share one reload
    results = await asyncio.gather(*(catalog_file.aget() for _ in range(5)))
    assert all(r is results[0] for r in results)
    assert results[0] is not first
    assert len(results[0].images) == 2


def _schema_patterns(node, path=()):
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield path, node["pattern"]
        for key, value in node.items():
            yield from _schema_patterns(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _schema_patterns(value, (*path, i))


def test_every_schema_pattern_refuses_a_trailing_newline():
    """ECMA-262 "$" (what the schema means) is Python's "\\Z", not "$"."""
    validator = catalog_schema_module._validator()
    patterns = list(_schema_patterns(json.loads(SCHEMA.read_text())))
    anchored = [(path, p) for path, p in patterns if p.endswith("$")]
    assert len(anchored) >= 15
    for path, pattern in anchored:
        strict = validator.evolve(schema={"type": "string", "pattern": pattern})
        # a value the pattern accepts, then the same value with a newline after it
        value = next(v for v in ("a", "/lab", "nvidia.com/gpu") if re.fullmatch(pattern, v))
        assert list(strict.iter_errors(value)) == [], (path, pattern)
        assert len(list(strict.iter_errors(value + "\n"))) == 1, (path, pattern)


@pytest.mark.parametrize(
    "where,value,location",
    [
        ("image-slug", "scipy\n", "images[0] (slug 'scipy\\n').slug"),
        ("size-slug", "small\n", "sizes[0] (slug 'small\\n').slug"),
        ("default_url", "/lab\r\nSet-Cookie: x=1", "images[0] (slug 'scipy').default_url"),
        ("default_url", "/lab\n", "images[0] (slug 'scipy').default_url"),
        ("default_url", "/lab tree", "images[0] (slug 'scipy').default_url"),
    ],
)
def test_newlines_and_spaces_are_refused_where_kubernetes_or_urls_forbid_them(
    where, value, location
):
    image = {"slug": "scipy", "display_name": "SciPy", "image": "quay.io/jupyter/scipy:2025-01-01"}
    data = {"version": 1, "images": [image]}
    if where == "image-slug":
        image["slug"] = value
    elif where == "size-slug":
        data["sizes"] = [
            {
                "slug": value,
                "display_name": "S",
                "cpu_guarantee": 1,
                "cpu_limit": 1,
                "mem_guarantee": "1Gi",
            }
        ]
    else:
        image["default_url"] = value
    errors, _ = validate(data)
    assert [loc for loc, _ in errors] == [location], errors


def _sorted_like_helm(data):
    """What helm's toYaml does to hub.config on its way into the hub Secret: map keys sorted."""
    return yaml.safe_load(yaml.safe_dump(data, sort_keys=True))


@pytest.mark.parametrize("form", ["list", "mapping"])
def test_default_precedence_survives_helms_key_sorting(form):
    """The preview (file order) and the hub (after helm sorted the keys) pick the same defaults."""
    images = [
        {"slug": s, "display_name": s, "image": f"quay.io/jupyter/{s}:2025-01-01"}
        for s in ("scipy", "torch", "rstudio")
    ]
    for image in images[1:]:
        image["allowed_groups"] = ["gpu-users", "chemistry"]
    entries = [("gpu-users", "torch"), ("chemistry", "rstudio"), ("*", "scipy")]
    if form == "list":
        defaults = [{"group": g, "image": i} for g, i in entries]
    else:
        defaults = {g: {"image": i} for g, i in entries}
    data = {"version": 1, "images": images, "defaults": defaults}
    as_written = load_data(copy.deepcopy(data), source="file")
    in_the_hub = load_data(_sorted_like_helm(data), source="hub")
    assert as_written.defaults == in_the_hub.defaults
    order = [d.group for d in as_written.defaults]
    # a list keeps its order; a mapping is taken in group-name order; '*' last either way
    assert order == (
        ["gpu-users", "chemistry", "*"] if form == "list" else ["chemistry", "gpu-users", "*"]
    )


def test_everyone_comes_last_wherever_it_is_written():
    scipy = {"slug": "scipy", "display_name": "S", "image": "quay.io/jupyter/scipy:2025-01-01"}
    images = [dict(scipy, allowed_groups=["physics"]), dict(scipy, slug="open")]
    for defaults in (
        [{"group": "*", "image": "open"}, {"group": "physics", "image": "scipy"}],
        {"*": {"image": "open"}, "physics": {"image": "scipy"}},
    ):
        catalog = load_data({"version": 1, "images": images, "defaults": defaults}, source="x")
        assert [(d.group, d.image) for d in catalog.defaults] == [
            ("physics", "scipy"),
            ("*", "open"),
        ]


HOSTILE_KEYS = ["a\nWARNING forged", "b\r\x1b[2K", "c\u2028d", "e f", "<script>"]


def _one_line_problems(data):
    errors, warnings = validate(data)
    problems = errors + warnings
    for where, message in problems:
        for text in (where, message):
            assert not any(c in text for c in "\n\r\x1b\u2028"), (where, message)
    return problems


@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=repr)
@pytest.mark.parametrize("place", ["top", "image", "env", "labels", "defaults"])
def test_hostile_keys_are_quoted_in_every_problem(key, place):
    """A key the catalog editor wrote comes back quoted, one problem per line."""
    image = {"slug": "scipy", "display_name": "SciPy", "image": "quay.io/jupyter/scipy:2025-01-01"}
    data = {"version": 1, "images": [image]}
    if place == "top":
        data[key] = 1
    elif place == "image":
        image[key] = 1
    elif place == "defaults":
        data["defaults"] = {key: {"image": "scipy"}}
    else:
        image[place] = {key: "x"}
    problems = _one_line_problems(data)
    if place == "labels" and key.isprintable():
        # label keys are display text ("python: 3.11"): HTML-escaped in the form, allowed
        assert problems == []
        return
    assert problems, "a hostile key must be a problem"
    assert any(repr(key) in where or repr(key) in message for where, message in problems)
