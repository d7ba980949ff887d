"""``nbspawner``: the admin command line.

Every command works from the hub's own configuration (``--config``: a ``jupyterhub_config.py``
or a zero-to-jupyterhub ``config.yaml``) and runs the same code the hub runs. ``render`` and
``preview`` are dry runs: they build the pod manifest without contacting a Kubernetes cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from . import offline
from ._version import __version__
from .errors import NBSpawnerError
from .hubconfig import HubConfig, load_hub_config
from .offline import example_config, example_file


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if getattr(args, "profile", None):
        options["profile"] = args.profile
    for item in getattr(args, "option", None) or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--option expects KEY=VALUE, got {item!r}")
        options[key] = value
    return options


def _summarise_profiles(profiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in profiles:
        entry: dict[str, Any] = {"slug": p.get("slug"), "display_name": p.get("display_name")}
        if p.get("default"):
            entry["default"] = True
        for name, option in (p.get("profile_options") or {}).items():
            entry.setdefault("options", {})[name] = list((option.get("choices") or {}).keys())
        out.append(entry)
    return out


class _Dumper(yaml.SafeDumper):
    """YAML with multi-line strings (the init scripts) in readable block style."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str_representer)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)


def _print_notes(hub: HubConfig) -> None:
    for note in hub.notes:
        print(f"# note: {note}", file=sys.stderr)


def _file_map(args: argparse.Namespace) -> dict[str, str]:
    out = {}
    for item in getattr(args, "file", None) or []:
        mount, sep, local = item.partition("=")
        if not sep:
            raise SystemExit(f"--file expects MOUNTPATH=LOCALPATH, got {item!r}")
        out[mount] = local
    return out


def _hub(args: argparse.Namespace) -> HubConfig:
    if args.config:
        hub = load_hub_config(args.config, _file_map(args))
    else:
        hub = example_config()
        print(
            f"# using the bundled example configuration ({example_file('config.yaml')})",
            file=sys.stderr,
        )
    _print_notes(hub)
    return hub


def cmd_preview(args: argparse.Namespace) -> int:
    hub = _hub(args)
    username = args.user
    profiles = asyncio.run(offline.profiles(hub, username))
    rendered = asyncio.run(offline.render(hub, username, _options(args)))
    print(f"# nbspawner {__version__} preview for user {username!r}: what the hub would create")
    print("# --- who the user is (from the directory) ---")
    print(_dump({"user": rendered["record"]}), end="")
    print("# --- the profiles this user may pick ---")
    print(_dump({"profiles": _summarise_profiles(profiles)}), end="")
    if rendered["secrets"]:
        print("# --- Secrets created before the pod ---")
        for s in rendered["secrets"]:
            print("---")
            print(_dump(s), end="")
    print("# --- the pod (dry run: nothing was sent to a cluster) ---")
    print("---")
    print(_dump(rendered["pod"]), end="")
    return 0


def cmd_lookup(args: argparse.Namespace) -> int:
    hub = _hub(args)
    record = asyncio.run(offline.lookup(hub, args.user))
    print(_dump(record), end="")
    return 0


def cmd_profiles(args: argparse.Namespace) -> int:
    hub = _hub(args)
    profiles = asyncio.run(offline.profiles(hub, args.user))
    if args.full:
        from .catalog import plain

        # plain lists and dicts: the overrides kubespawner calls (MergeList) dump as lists
        print(_dump(plain(profiles)), end="")
    else:
        print(_dump(_summarise_profiles(profiles)), end="")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    hub = _hub(args)
    rendered = asyncio.run(offline.render(hub, args.user, _options(args)))
    for s in rendered["secrets"]:
        print(_dump(s) + "---")
    print(_dump(rendered["pod"]), end="")
    return 0


def cmd_catalog_check(args: argparse.Namespace) -> int:
    from .catalog import check_file

    ok, text = check_file(args.file)
    print(text)
    return 0 if ok else 1


def cmd_check(args: argparse.Namespace) -> int:
    from .checks import run_checks

    hub = _hub(args)
    ok, lines = asyncio.run(run_checks(hub, args.user or ()))
    for line in lines:
        print(line)
    return 0 if ok else 1


def cmd_install_files(args: argparse.Namespace) -> int:
    from . import install_files

    if args.route == "extrafiles":
        data = install_files.extra_files_values(args.mount_dir)
    elif args.route == "configmap":
        data = install_files.configmap(args.name)
    else:
        data = install_files.configmap_values(args.name, args.mount_dir)
    print(_dump(data), end="")
    print(
        install_files.budget("extrafiles" if args.route == "extrafiles" else "configmap"),
        file=sys.stderr,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbspawner",
        description="Admin tools for nbspawner, the JupyterHub KubeSpawner for directory identities. "
        "Without --config, commands use the bundled example (a static directory with users "
        "alice, bob and carol, and the example image catalog).",
    )
    parser.add_argument("--version", action="version", version=f"nbspawner {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add_config(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config",
            "-c",
            metavar="FILE",
            help="the hub's jupyterhub_config.py or the z2jh config.yaml (default: bundled example)",
        )
        p.add_argument(
            "--file",
            action="append",
            metavar="MOUNTPATH=LOCALPATH",
            help="a hub file given with `helm --set-file` (e.g. the catalog): where it is locally",
        )

    def add_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--profile", "-p", help="the profile slug the user picks (default: their default)"
        )
        p.add_argument(
            "--option",
            "-o",
            action="append",
            metavar="KEY=VALUE",
            help="a profile option choice, as the spawn form's user_options carry it (e.g. "
            "size=medium, gpu=nvidia-a100)",
        )

    p = sub.add_parser("preview", help="what a user gets: their identity, profiles and exact pod")
    p.add_argument("user", nargs="?", default="alice", help="username (default: alice)")
    add_config(p)
    add_options(p)
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser("lookup", help="resolve USER in the directory (which backend answered)")
    p.add_argument("user")
    add_config(p)
    p.set_defaults(func=cmd_lookup)

    p = sub.add_parser("profiles", help="the profiles USER would see")
    p.add_argument("user")
    p.add_argument("--full", action="store_true", help="print the whole kubespawner profile_list")
    add_config(p)
    p.set_defaults(func=cmd_profiles)

    p = sub.add_parser("render", help="the exact pod manifest for USER as YAML (dry run)")
    p.add_argument("user")
    add_config(p)
    add_options(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("check", help="check configuration, catalog and directory connectivity")
    add_config(p)
    p.add_argument(
        "--user",
        "-u",
        action="append",
        metavar="NAME",
        help="also spawn NAME as the hub would (lookup, policy, default profile, pod; no "
        "cluster); repeatable",
    )
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "install-files",
        help="the package as files for the hub without an image build (z2jh hub.extraFiles, "
        "or a ConfigMap); prints YAML, and the size budget to stderr",
    )
    p.add_argument(
        "route",
        choices=["extrafiles", "configmap", "configmap-values"],
        help="extrafiles: a hub.extraFiles values block (helm --values); configmap: a "
        "ConfigMap manifest (kubectl apply); configmap-values: the hub.extraVolumes and "
        "hub.extraVolumeMounts that mount it (helm --values)",
    )
    p.add_argument("--name", default="nbspawner", help="the ConfigMap's name (default: nbspawner)")
    p.add_argument(
        "--mount-dir",
        default="/usr/local/etc/jupyterhub",
        help="a directory on the hub's sys.path (default: z2jh's /usr/local/etc/jupyterhub)",
    )
    p.set_defaults(func=cmd_install_files)

    p = sub.add_parser("catalog", help="image catalog tools")
    csub = p.add_subparsers(dest="catalog_command", metavar="SUBCOMMAND")
    c = csub.add_parser("check", help="validate a catalog file and print every problem")
    c.add_argument("file")
    c.set_defaults(func=cmd_catalog_check)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # the spawner's admin log lines (e.g. why a spawn is refused) go to stderr, not nowhere
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("# %(levelname)s: %(message)s"))
    spawner_log = logging.getLogger("traitlets")
    spawner_log.addHandler(handler)
    try:
        return args.func(args)
    except NBSpawnerError as err:
        print(f"nbspawner: {err.log_message}", file=sys.stderr)
        for location, message in getattr(err, "problems", []):
            print(f"  {location}: {message}", file=sys.stderr)
        return 1
    except Exception as err:  # the hub's user-facing errors (HTTPError) end up here too
        message = (
            getattr(err, "jupyterhub_message", None)
            or getattr(err, "log_message", None)
            or str(err)
        )
        print(f"nbspawner: {type(err).__name__}: {message}", file=sys.stderr)
        return 1
    finally:
        spawner_log.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
