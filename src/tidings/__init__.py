"""tidings: real-time in-app notifications for multi-tenant SaaS.

The names below are loaded on first use (PEP 562), so ``import tidings.client`` (the SDK) or
``import tidings.domain`` does not pull in the server (FastAPI, SQLAlchemy, the channels).
``__version__`` has one source: the installed package's metadata (``pyproject.toml``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tidings.app import create_app
    from tidings.config import Settings
    from tidings.domain.notifications import Audience, NewNotification, Notification
    from tidings.errors import TidingsError

__all__ = ["Audience", "NewNotification", "Notification", "Settings", "TidingsError", "create_app"]

_WHERE = {
    "Audience": "tidings.domain.notifications",
    "NewNotification": "tidings.domain.notifications",
    "Notification": "tidings.domain.notifications",
    "Settings": "tidings.config",
    "TidingsError": "tidings.errors",
    "create_app": "tidings.app",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib import metadata

        try:
            version = metadata.version("tidings")
        except metadata.PackageNotFoundError:  # run from a source tree that is not installed
            version = "0+unknown"
        globals()["__version__"] = version
        return version
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tidings' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__, "__version__"])
