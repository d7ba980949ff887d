"""nbspawner: JupyterHub's KubeSpawner for institutes whose users already have an identity.

``c.JupyterHub.spawner_class = "nbspawner"`` (entry point) or ``"nbspawner.NBSpawner"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .spawner import NBSpawner

__all__ = ["NBSpawner", "__version__"]


def __getattr__(name: str) -> Any:
    # Import the spawner (and so kubespawner) only when asked for: the pure modules and the
    # CLI's catalog check stay importable without a Kubernetes client configured.
    if name == "NBSpawner":
        from .spawner import NBSpawner

        return NBSpawner
    raise AttributeError(f"module 'nbspawner' has no attribute {name!r}")
