"""Modules imported on first use, so that a command pays only for the layers it reaches.

Every `reconciler` run, every `--help` and every shell-completion TAB starts a process; the store
(SQLAlchemy) and cryptography cost more to import than most commands take to run. A module that
needs one of them only in some of its functions names it once, with its other imports:

    if TYPE_CHECKING:
        from reconciler import store
    else:
        store = lazy.module("reconciler.store")

Type checkers (and tests/test_layers.py, which reads every import) see the plain import, so
the dependency stays declared where it was. At run time `store` is a stand-in: the first attribute read
(`store.Store.open(...)`) imports the module the ordinary way, and every read is the real
module's attribute (so a test that patches the real module patches what the caller sees).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _Deferred(ModuleType):
    def __getattr__(self, attr: str) -> Any:
        # Called only for what the stand-in itself lacks: everything but its name.
        return getattr(importlib.import_module(self.__name__), attr)

    def __repr__(self) -> str:
        return f"<module {self.__name__!r}, imported on first use>"


def module(name: str) -> ModuleType:
    """A stand-in for the module `name` that imports it when an attribute is first read."""
    return _Deferred(name)
