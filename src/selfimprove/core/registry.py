"""Name -> factory registries, so the CLI, configs and the proxy share one vocabulary."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from selfimprove.core.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a public name to a factory. `get` raises an error listing the valid names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._factories[name] = factory
            return factory

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._factories[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, list(self._factories)) from None

    def names(self) -> list[str]:
        return sorted(self._factories)
