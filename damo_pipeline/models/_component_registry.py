"""A tiny name -> constructor registry, one per component kind (backbone, neck, head)."""
from __future__ import annotations

from typing import Any, Callable, Dict, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a config ``type`` string to the class or factory that builds it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: Dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``fn`` under ``name``; a name can be registered once."""

        def decorator(fn: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered.")
            self._entries[name] = fn
            return fn

        return decorator

    def names(self) -> list[str]:
        return sorted(self._entries)

    def build(self, config: Dict[str, Any]) -> T:
        """Build from a config dict holding ``type`` plus the constructor's keyword arguments."""
        if not isinstance(config, dict) or "type" not in config:
            raise ValueError(f"A {self.kind} config must be a dict with a 'type' key; got {config!r}.")
        kwargs = dict(config)
        name = kwargs.pop("type")
        if name not in self._entries:
            raise ValueError(f"Unknown {self.kind} type {name!r}; known: {self.names()}.")
        try:
            return self._entries[name](**kwargs)
        except TypeError as e:
            raise ValueError(f"Bad arguments for {self.kind} {name!r}: {e}") from e
