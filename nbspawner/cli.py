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

from . import offline, output
from ._version import __version__
from .errors import NBSpawnerError
from .hubconfig import FileMapError, HubConfig, load_hub_config
from .offline import example_config, example_file


class UsageError(Exception):
    """A command line the command cannot run (exit code 2, like argparse's own)."""


def _emit(args: argparse.Namespace, data: Any, table_text: str | None = None) -> None:
    """``data`` in the chosen output format (``table_text``: the table, where there is one)."""
    fmt = getattr(args, "output", None) or "yaml"
    if fmt == "json":
        print(output.dump_json(data), end="")
    elif fmt == "table" and table_text is not None:
        print(table_text, end="")
    elif fmt == "table":
        raise UsageError(f"nbspawner {args.command} has no table output; use -o yaml or -o json")
    else:
        print(output.dump_yaml(data), end="")


def _print_notes(hub: HubConfig) -> None:
    for note in [*hub.notes, *hub.pod_notes]:
        print(f"# note: {note}", file=sys.stderr)


def _file_map(args: argparse.Namespace) -> dict[str, str]:
    out = {}
    for item in getattr(args, "file", None) or []:
        mount, sep, local = item.partition("=")
        if not sep:
            raise UsageError(f"--file expects MOUNTPATH=LOCALPATH, got {item!r}")
        out[mount] = local
    return out


def _hub(args: argparse.Namespace) -> HubConfig:
    if args.config:
        try:
            hub = load_hub_config(args.config, _file_map(args))
        except FileMapError as e:
            raise UsageError(e.log_message) from None
    else:
        hub = example_config()
        print(
            f"# using the bundled example configuration ({example_file('config.yaml')})",
            file=sys.stderr,
        )
    _print_notes(hub)
    return hub


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if getattr(args, "profile", None):
        options["profile"] = args.profile
    for item in getattr(args, "option", None) or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--option expects KEY=VALUE, got {item!r}")
        options[key] = value
    return options


def _auth_state(args: argparse.Namespace, hub: HubConfig) -> Any:
    try:
        return offline.read_auth_state(hub, args.auth_state, args.claims)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _pod(args: argparse.Namespace, pod: Any) -> Any:
    return pod if getattr(args, "full", False) else output.script_references(pod)


def cmd_preview(args: argparse.Namespace) -> int:
    hub = _hub(args)
    username = args.user
    options = _options(args)
    state = _auth_state(args, hub)
    profiles = asyncio.run(offline.profiles(hub, username, state))
    rendered = asyncio.run(offline.render(hub, username, options, state))
    summary = output.summary(rendered, options)
    pod = _pod(args, rendered["pod"])
    if args.output == "json":
        print(
            output.dump_json(
                {
                    "summary": summary,
                    "user": rendered["record"],
                    "profiles": output.profiles_summary(profiles),
                    "secrets": rendered["secrets"],
                    "pod": pod,
                }
            ),
            end="",
        )
        return 0
    if args.output == "table":
        rows = [(k, "; ".join(v) if isinstance(v, list) else v) for k, v in summary.items()]
        print(output.table(("field", "value"), rows), end="")
        return 0
    print(f"# nbspawner {__version__} preview for user {username!r}: what the hub would create")
    print("# --- summary ---")
    print(output.dump_yaml({"summary": summary}), end="")
    print("# --- who the user is (from the directory) ---")
    print(output.dump_yaml({"user": rendered["record"]}), end="")
    print("# --- the profiles this user may pick ---")
    print(output.dump_yaml({"profiles": output.profiles_summary(profiles)}), end="")
    if rendered["secrets"]:
        print("# --- Secrets created before the pod ---")
        for s in rendered["secrets"]:
            print("---")
            print(output.dump_yaml(s), end="")
    print("# --- the pod (dry run: nothing was sent to a cluster) ---")
    print("---")
    print(output.dump_yaml(pod), end="")
    return 0


def cmd_lookup(args: argparse.Namespace) -> int:
    hub = _hub(args)
    record = asyncio.run(offline.lookup(hub, args.user, _auth_state(args, hub)))

    def cell(key: str, value: Any) -> Any:
        if key == "posix_groups":
            return ", ".join(f"{name} {gid}" for name, gid in value)
        return ", ".join(map(str, value)) if isinstance(value, list) else value

    rows = [(k, cell(k, v)) for k, v in record.items()]
    _emit(args, record, output.table(("field", "value"), rows))
    return 0


def cmd_profiles(args: argparse.Namespace) -> int:
    hub = _hub(args)
    profiles = asyncio.run(offline.profiles(hub, args.user, _auth_state(args, hub)))
    summary = output.profiles_summary(profiles)
    rows = [
        (
            p["slug"],
            p["display_name"],
            "yes" if p.get("default") else "no",
            "; ".join(f"{k}: {', '.join(v)}" for k, v in (p.get("options") or {}).items()),
        )
        for p in summary
    ]
    if args.full:
        from .catalog import plain

        # plain lists and dicts: the overrides kubespawner calls (MergeList) dump as lists
        _emit(args, plain(profiles))
    else:
        _emit(args, summary, output.table(("slug", "display name", "default", "options"), rows))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    hub = _hub(args)
    rendered = asyncio.run(offline.render(hub, args.user, _options(args), _auth_state(args, hub)))
    pod = _pod(args, rendered["pod"])
    if args.output in ("json", "table"):
        _emit(args, {"secrets": rendered["secrets"], "pod": pod}, output.containers_table(pod))
        return 0
    for s in rendered["secrets"]:
        print(output.dump_yaml(s) + "---")
    print(output.dump_yaml(pod), end="")
    return 0


def cmd_catalog_check(args: argparse.Namespace) -> int:
    from .catalog import format_report, load
    from .errors import CatalogError

    try:
        catalog = load(args.file)
        errors, warnings = [], list(catalog.warnings)
    except CatalogError as e:
        catalog, errors, warnings = None, list(e.problems), []
    data = {
        "file": str(args.file),
        "ok": not errors,
        "errors": [{"location": loc, "message": msg} for loc, msg in errors],
        "warnings": [{"location": loc, "message": msg} for loc, msg in warnings],
    }
    text = format_report(str(args.file), errors, warnings, catalog) + "\n"
    if (args.output or "table") == "table":
        print(text, end="")
    else:
        _emit(args, data)
    return 0 if not errors else 1


def cmd_check(args: argparse.Namespace) -> int:
    from .checks import run_checks

    hub = _hub(args)
    ok, lines = asyncio.run(run_checks(hub, args.user or ()))
    if (args.output or "table") == "table":
        for line in lines:
            print(line)
    else:
        _emit(args, {"ok": ok, "results": output.check_results(lines)})
    return 0 if ok else 1


def cmd_install_files(args: argparse.Namespace) -> int:
    from . import install_files

    if args.route == "extrafiles":
        data = install_files.extra_files_values(args.mount_dir)
    elif args.route == "configmap":
        data = install_files.configmap(args.name)
    else:
        data = install_files.configmap_values(args.name, args.mount_dir)
    _emit(args, data)
    route = "extrafiles" if args.route == "extrafiles" else "configmap"
    print(install_files.budget(route), file=sys.stderr)
    return 0


def cmd_prepuller(args: argparse.Namespace) -> int:
    from .install_files import prepuller_values

    hub = _hub(args)
    catalog = asyncio.run(offline.catalog(hub))
    if catalog is None:
        raise UsageError(
            "the configuration has no nbspawner catalog (NBSpawner.catalog_file or .catalog)"
        )
    values, skipped = prepuller_values(catalog)
    _emit(args, values)
    for ref in skipped:
        print(
            f"# nbspawner: {ref} is pinned by digest; z2jh's pre-puller needs a tag: left out",
            file=sys.stderr,
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbspawner",
        description="Admin tools for nbspawner, the JupyterHub KubeSpawner for directory identities. "
        "Without --config, commands use the bundled example (a static directory with users "
        "alice, bob and carol, and the example image catalog).",
        epilog="Exit codes: 0 ok; 1 a problem was found (a refused user, a failed check, an "
        "invalid catalog); 2 the command line is wrong.",
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

    def add_output(p: argparse.ArgumentParser, default: str = "yaml") -> None:
        p.add_argument(
            "--output",
            "-o",
            choices=output.FORMATS,
            default=default,
            help=f"yaml, json or table (default: {default})",
        )

    def add_identity(p: argparse.ArgumentParser) -> None:
        who = p.add_mutually_exclusive_group()
        who.add_argument(
            "--claims",
            metavar="FILE",
            help="the user's OIDC claims (JSON or YAML), for OIDCClaimsDirectory",
        )
        who.add_argument(
            "--auth-state",
            metavar="FILE",
            help="the user's whole auth_state (JSON or YAML), e.g. ldapauthenticator's",
        )

    def add_full(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--full",
            action="store_true",
            help="show nbspawner's init scripts in the pod (default: file name and sha256)",
        )

    def add_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--profile", "-p", help="the profile slug the user picks (default: their default)"
        )
        p.add_argument(
            "--option",
            action="append",
            metavar="KEY=VALUE",
            help="a profile option choice, as the spawn form's user_options carry it (e.g. "
            "size=medium, gpu=nvidia-a100)",
        )

    p = sub.add_parser("preview", help="what a user gets: their identity, profiles and exact pod")
    p.add_argument("user", nargs="?", default="alice", help="username (default: alice)")
    add_config(p)
    add_options(p)
    add_full(p)
    add_output(p)
    add_identity(p)
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser("lookup", help="resolve USER in the directory (which backend answered)")
    p.add_argument("user")
    add_config(p)
    add_output(p)
    add_identity(p)
    p.set_defaults(func=cmd_lookup)

    p = sub.add_parser("profiles", help="the profiles USER would see")
    p.add_argument("user")
    p.add_argument("--full", action="store_true", help="print the whole kubespawner profile_list")
    add_config(p)
    add_output(p)
    add_identity(p)
    p.set_defaults(func=cmd_profiles)

    p = sub.add_parser("render", help="the exact pod manifest for USER as YAML (dry run)")
    p.add_argument("user")
    add_config(p)
    add_options(p)
    add_full(p)
    add_output(p)
    add_identity(p)
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
    add_output(p, "table")
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
    add_output(p)
    p.set_defaults(func=cmd_install_files)

    p = sub.add_parser(
        "prepuller",
        help="z2jh prePuller.extraImages for every catalog image (helm --values)",
    )
    add_config(p)
    add_output(p)
    p.set_defaults(func=cmd_prepuller)

    p = sub.add_parser("catalog", help="image catalog tools")
    csub = p.add_subparsers(dest="catalog_command", metavar="SUBCOMMAND")
    c = csub.add_parser("check", help="validate a catalog file and print every problem")
    c.add_argument("file")
    add_output(c, "table")
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
    except UsageError as err:
        print(f"nbspawner: {err}", file=sys.stderr)
        return 2
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
