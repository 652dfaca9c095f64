"""Name -> factory registries, so the CLI, configs and the proxy share one vocabulary."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

from selfimprove.core.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a public name to a factory. `get` raises an error listing the valid names.

    `builtins` are modules that register themselves on import; they are imported on first lookup,
    so importing a package never pulls in heavy optional dependencies.
    """

    def __init__(self, kind: str, builtins: tuple[str, ...] = ()):
        self.kind = kind
        self._builtins = builtins
        self._loaded = False
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._factories[name] = factory
            return factory

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        self._load_builtins()
        try:
            return self._factories[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, list(self._factories)) from None

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(self._factories)

    def _load_builtins(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._builtins:
                importlib.import_module(module)
