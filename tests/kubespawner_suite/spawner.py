"""The class kubespawner's tests get instead of ``KubeSpawner``: an NBSpawner, configured the
way an admin configures one, with a static directory that knows every user the tests use.

Import this only after the plugin has set ``KUBECONFIG`` (kubernetes_asyncio reads it once, at
import): :func:`tests.kubespawner_suite.plugin.pytest_load_initial_conftests` does.
"""

from __future__ import annotations

import re
from typing import Any

from traitlets.config import Config

from nbspawner import NBSpawner

#: every user name kubespawner's tests give their spawners (7.0.0 and 7.1.0 alike):
#: ``mock@name`` is what ``KubeSpawner(_mock=True)`` invents when no user is passed,
#: ``9user@email.com`` the default name of test_spawner.py's ``MockUser``; the others are
#: ``MockUser(name=...)`` and ``user.name = ...`` in test_spawner.py (grep ``name=``)
SUITE_USERNAMES = (
    "mock@name",
    "9user@email.com",
    "start",
    "start@test",
    "ssl",
    "services",
    "hook",
    "progress",
    "needs-Escape",
    "connectip",
    "url",
    "user1",
    "mockuser",
    "user",
    "some_user",
    "user-has-dash",
    "user-has",
)
#: the "posix" pass: the names a hub whose authenticator maps logins to POSIX account names
#: (what docs/reference/compatibility.md tells the admin to do) gives these users instead
POSIX_NAMES = {
    "mock@name": "mock_name",
    "9user@email.com": "user9",
    "start@test": "start_test",
}
#: everybody's primary group (name: gid)
SUITE_GROUP = ("ksusers", 20000)
FIRST_UID = 20001


def _home(username: str) -> str:
    # a home is a path, not a user name: characters a path may not hold become "_"
    return "/home/" + re.sub(r"[^A-Za-z0-9_.-]", "_", username)


#: the directory: ``{name: {uid, gid, home, groups}}`` as in ``c.StaticDirectory.users``
SUITE_USERS: dict[str, dict[str, Any]] = {
    name: {
        "uid": FIRST_UID + i,
        "gid": SUITE_GROUP[1],
        "home": _home(name),
        "groups": [SUITE_GROUP[0]],
    }
    for i, name in enumerate(SUITE_USERNAMES + tuple(POSIX_NAMES.values()))
}


def suite_config() -> Config:
    """What an admin writes for NBSpawner: the static directory with the tests' users.

    Everything else (passwd hook, uid range, storage, catalog) is left at NBSpawner's defaults.
    """
    c = Config()
    c.NBSpawner.directory_class = "static"
    c.StaticDirectory.users = SUITE_USERS
    c.StaticDirectory.groups = {SUITE_GROUP[0]: {"gid": SUITE_GROUP[1]}}
    return c


def map_usernames_to_posix() -> None:
    """Switch to the "posix" pass: every spawner's user gets its :data:`POSIX_NAMES` name.

    Users the tests pass in are renamed in :meth:`SuiteSpawner.__init__` (and the default name
    of the tests' ``MockUser`` by :func:`rename_test_users`); the user that
    ``KubeSpawner(_mock=True)`` invents (``mock@name``, on a ``kubespawner.spawner.MockObject``)
    is renamed as kubespawner sets its name, by a subclass of that test double.
    """
    import kubespawner.spawner as ks

    if getattr(ks.MockObject, "_nbspawner_posix", False):
        return

    class PosixNamedMockObject(ks.MockObject):
        _nbspawner_posix = True

        def __setattr__(self, key: str, value: Any) -> None:
            if key == "name":
                value = POSIX_NAMES.get(value, value)
            super().__setattr__(key, value)

    ks.MockObject = PosixNamedMockObject
    SuiteSpawner.rename = dict(POSIX_NAMES)


def rename_test_users(modules: list[Any]) -> None:
    """The "posix" pass, in kubespawner's test modules: the default name of a ``MockUser``
    test double (test_spawner.py's is ``9user@email.com``) becomes its POSIX name, for the
    control run (KubeSpawner itself) as for NBSpawner."""
    for module in modules:
        mock_user = getattr(module, "MockUser", None)
        name = getattr(mock_user, "name", None)
        if isinstance(mock_user, type) and isinstance(name, str) and name in POSIX_NAMES:
            mock_user.name = POSIX_NAMES[name]


class SuiteSpawner(NBSpawner):
    """NBSpawner with :func:`suite_config` under the test's own config (the test's wins).

    Counts its instances (the plugin reports how many each test built: proof the swap
    happened) and the user names the directory was asked about that it does not know (the
    plugin fails the run on any: :data:`SUITE_USERNAMES` would be incomplete).
    """

    #: instances built since the plugin last reset it (per test)
    instances = 0
    #: hub user names looked up that are not in SUITE_USERS
    unknown_users: set[str] = set()
    #: the "posix" pass: user name -> the name the hub gives the user
    rename: dict[str, str] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        user = kwargs.get("user")
        name = getattr(user, "name", None)
        if isinstance(name, str) and name in self.rename:
            user.name = self.rename[name]
        if "parent" not in kwargs:
            config = suite_config()
            config.merge(kwargs.get("config") or Config())
            kwargs["config"] = config
        SuiteSpawner.instances += 1
        super().__init__(*args, **kwargs)

    async def resolve(self):
        name = getattr(self.user, "name", None)
        if name not in SUITE_USERS:
            SuiteSpawner.unknown_users.add(repr(name))
        return await super().resolve()
