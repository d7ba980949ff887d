"""List-valued kubespawner overrides that the catalog's choices hand to kubespawner.

kubespawner's ``_apply_overrides`` calls a callable override value with the spawner and
*replaces* list traits with the result, which would drop what the admin configured (z2jh's
user-node toleration, the home volume). These are lists (they serialise to JSON as lists) that
kubespawner calls, and that return the spawner's own list with the catalog's entries merged in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .catalog import plain

# ---------------------------------------------------------------------------
# List overrides that merge instead of replacing
# ---------------------------------------------------------------------------


def _merge_key(trait: str, item: Any) -> Any:
    if isinstance(item, str):  # image_pull_secrets may be plain names
        return item
    if trait in ("volumes", "image_pull_secrets"):
        return item.get("name")
    if trait == "volume_mounts":
        return item.get("mountPath")
    return repr(sorted(item.items()))


class ListOverride(list):
    """A list-valued override that kubespawner calls (it is callable) to get a fresh, plain list.

    kubespawner assigns list overrides to the spawner as they are; handing it a new list
    keeps the spawner's traits mutable and the shared catalog data untouched.
    """

    __slots__ = ("trait",)

    def __init__(self, trait: str, items: Iterable[Any] = ()) -> None:
        list.__init__(self, (plain(i) for i in items))
        self.trait = trait

    def __call__(self, spawner: Any) -> list[Any]:
        return plain(list(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.trait, list(self)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.trait!r}, {list.__repr__(self)})"


class MergeList(ListOverride):
    """Entries to merge into one of the spawner's list traits (volumes, tolerations, ...).

    kubespawner's ``_apply_overrides`` calls callable override values with the spawner; this one
    returns the spawner's current list (a dict-valued trait is taken as its values sorted by
    key, as kubespawner does) with these entries added. An entry with the same volume name /
    mount path replaces the spawner's one; an identical entry is not added twice. So the image's,
    the size's and the GPU's entries for one trait add up. (NBSpawner puts the configured
    values back before each spawn, so an earlier choice leaves nothing behind.)
    """

    __slots__ = ()

    def __call__(self, spawner: Any) -> list[Any]:
        current = getattr(spawner, self.trait, None) or []
        if isinstance(current, Mapping):
            current = [current[k] for k in sorted(current)]
        merged = plain(list(current))
        positions = {_merge_key(self.trait, item): i for i, item in enumerate(merged)}
        for item in self:
            key = _merge_key(self.trait, item)
            if key in positions:
                merged[positions[key]] = plain(item)
            else:
                positions[key] = len(merged)
                merged.append(plain(item))
        return merged


class NodeTerms(ListOverride):
    """Required node-affinity terms, added *to* each of the spawner's own terms.

    Kubernetes ORs the terms of ``nodeSelectorTerms``: appending ours would let the pod onto
    any node matching either (z2jh's "user nodes only" term, or the catalog's node pool). So each
    configured term gets the catalog term's expressions added (an AND), one combination per pair.
    """

    __slots__ = ()

    def __call__(self, spawner: Any) -> list[Any]:
        current = plain(list(getattr(spawner, self.trait, None) or []))
        if not current:
            return plain(list(self))
        return [
            {
                key: [*(mine.get(key) or []), *(theirs.get(key) or [])]
                for key in ("matchExpressions", "matchFields")
                if mine.get(key) or theirs.get(key)
            }
            for mine in current
            for theirs in plain(list(self))
        ]


def merged_overrides(*overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides applied as one (combinations mode): dicts merged, list overrides joined."""
    out: dict[str, Any] = {}
    for override in overrides:
        for key, value in override.items():
            before = out.get(key)
            if isinstance(before, dict) and isinstance(value, dict):
                out[key] = {**before, **value}
            elif isinstance(before, ListOverride) and isinstance(value, ListOverride):
                out[key] = type(value)(key, [*before, *value])
            else:
                out[key] = value
    return out
