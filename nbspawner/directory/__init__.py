"""Directory backends: who a user is (uid, gid, groups, home)."""

from .base import Directory, UserRecord

__all__ = ["Directory", "UserRecord"]
