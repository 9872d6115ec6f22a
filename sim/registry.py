"""Name-to-class registries that make a new backend, scenario or analyzer one file and one decorator."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from hydra.core.config_store import ConfigStore

from sim.errors import SimError

T = TypeVar("T")


class Registry(Generic[T]):
    """Classes of one kind by name; each config schema is also stored in Hydra's ConfigStore."""

    def __init__(self, group: str) -> None:
        self.group = group
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str, config: type | None = None) -> Callable[[type[T]], type[T]]:
        """Decorator: register a class under `name`, and its dataclass schema as `<group>/base_<name>`."""

        def decorate(cls: type[T]) -> type[T]:
            if name in self._classes:
                raise ValueError(f"{self.group} {name!r} is registered twice")
            self._classes[name] = cls
            cls.name = name  # type: ignore[attr-defined]
            if config is not None:
                ConfigStore.instance().store(group=self.group, name=f"base_{name}", node=config)
            return cls

        return decorate

    def get(self, name: str) -> type[T]:
        """The class registered as `name`, or a SimError listing the known names."""
        try:
            return self._classes[name]
        except KeyError:
            known = ", ".join(sorted(self._classes)) or "none"
            raise SimError(f"unknown {self.group} {name!r} (available: {known})") from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._classes)
