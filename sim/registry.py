"""Name-to-class registries that make a new backend, scenario or analyzer one file and one decorator."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable, Generic, Optional, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sim.config import build
from sim.errors import SimError, one_line

T = TypeVar("T")


class Registry(Generic[T]):
    """Classes of one kind by name; each config schema is also stored in Hydra's ConfigStore. `builder` makes an
    object from its composed config node, as a run does (backends take their pricing off first)."""

    def __init__(self, group: str, builder: Callable[[DictConfig, str], Any] = build) -> None:
        self.group = group
        self._builder = builder
        self._classes: dict[str, type[T]] = {}
        self._schemas: dict[str, type] = {}

    def register(self, name: str, config: type | None = None) -> Callable[[type[T]], type[T]]:
        """Decorator: register a class under `name`, and its dataclass schema as `<group>/base_<name>`."""

        def decorate(cls: type[T]) -> type[T]:
            if name in self._classes:
                raise ValueError(f"{self.group} {name!r} is registered twice")
            self._classes[name] = cls
            cls.name = name  # type: ignore[attr-defined]
            if config is not None:
                self._schemas[name] = config
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

    def schema(self, name: str) -> type:
        """The dataclass schema registered with `name`, home of its defaults; a SimError when it has none."""
        self.get(name)
        try:
            return self._schemas[name]
        except KeyError:
            raise SimError(f"{self.group} {name!r} has no config schema") from None

    def schema_for_target(self, target: Optional[str]) -> Optional[type]:
        """The registered schema that builds `target` (a `_target_` path), or None when none does."""
        if target is None:
            return None
        return next((schema for schema in self._schemas.values() if getattr(schema, "_target_", None) == target), None)

    def create(self, name: str, **overrides: Any) -> T:
        """The object registered as `name`, built from its schema's defaults with `overrides` and validated as in a
        run; a SimError for a setting the schema lacks or a value it refuses."""
        schema = self.schema(name)
        settings = [field.name for field in fields(schema) if not field.name.startswith("_")]
        if unknown := sorted(set(overrides) - set(settings)):
            raise SimError(f"{self.group} {name!r} has no setting {unknown[0]!r} (settings: {', '.join(settings) or 'none'})")
        what = f"{self.group} {name}"
        try:
            node = OmegaConf.merge(OmegaConf.structured(schema), overrides)
        except OmegaConfBaseException as exc:
            raise SimError(f"cannot build {what}: {one_line(str(exc))}") from None
        built: T = self._builder(node, what)
        return built

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._classes)
