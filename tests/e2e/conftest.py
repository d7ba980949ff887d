"""End-to-end scenarios: a real JupyterHub + configurable-http-proxy, NBSpawner against the real
kube-apiserver and the kubelet stand-in, a real directory (slapd or an OIDC provider) and
headless chromium. Everything here is marked ``e2e``; nothing is mocked and nothing skips.

Prerequisites (tools/test-all.sh installs them): the control plane binaries
(``tools/build-controlplane.sh``), configurable-http-proxy (``npm ci`` in tools/), the notebook
environment (``tools/singleuser-venv.sh``), Debian's ``chromium`` and ``slapd``, and the
``[test]`` extra (playwright, oidc-provider-mock, ldapauthenticator, oauthenticator).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.helpers import ARTIFACTS, reset_cluster


@pytest.fixture(scope="module")
def e2e_cluster(controlplane: Any, kubelet: Any) -> Iterator[Any]:
    """The control plane + kubelet for one scenario module, emptied before and after it."""
    reset_cluster(controlplane, kubelet)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield controlplane
    finally:
        reset_cluster(controlplane, kubelet)
