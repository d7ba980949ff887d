"""Prometheus metrics, exported on the hub's own ``/metrics`` endpoint.

JupyterHub serves the default ``prometheus_client`` registry, so registering here is enough.
Names follow JupyterHub's (``jupyterhub_`` prefix is JupyterHub's; ours is ``nbspawner_``).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

LOOKUP_SECONDS = Histogram(
    "nbspawner_directory_lookup_duration_seconds",
    "Time to resolve a user's identity in the directory backend (cache misses only)",
    ["backend", "outcome"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CACHE_REQUESTS = Counter(
    "nbspawner_directory_cache_requests",
    "Directory cache lookups by result (hit, miss, negative_hit, shared: joined an in-flight lookup)",
    ["result"],
)
REFUSALS = Counter(
    "nbspawner_spawn_refusals",
    "Spawns refused by nbspawner, by reason",
    ["reason"],
)
CATALOG_RELOADS = Counter(
    "nbspawner_catalog_reloads",
    "Catalog file reloads by outcome (ok, invalid)",
    ["outcome"],
)
