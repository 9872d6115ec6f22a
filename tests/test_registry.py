"""Registries: building a registered class through its schema, the one home of its defaults."""

from __future__ import annotations

import inspect

import pytest

from analyzers import analyzers
from scenarios import scenarios
from sim.backends.base import backends
from sim.compose import compose_config
from sim.errors import SimError
from sim.registry import Registry


def test_create_takes_the_schema_defaults_and_the_overrides() -> None:
    digression = analyzers.create("digression", threshold=0.5)
    assert digression.threshold == 0.5
    assert digression.max_turns == 40 and digression.judge is None
    spp = scenarios.create("spp", n_episodes=1)
    assert spp.n_episodes == 1
    assert spp.personas == ["Logic Puzzle Expert", "Critical Thinker"] and spp.sampling.max_tokens == 992


def test_create_builds_a_backend_as_a_run_does() -> None:
    backend = backends.create("scripted", replies=["Hi."], pricing={"input_usd_per_mtok": 1, "output_usd_per_mtok": 2})
    assert backend.replies == ["Hi."] and backend.model == "scripted"
    assert backend.pricing is not None and backend.pricing.output_usd_per_mtok == 2.0


def test_create_refuses_an_unknown_setting_or_a_bad_value() -> None:
    with pytest.raises(SimError, match=r"analyzer 'digression' has no setting 'treshold' \(settings: .*threshold"):
        analyzers.create("digression", treshold=0.5)
    with pytest.raises(SimError, match="cannot build analyzer digression: Value 'high'"):
        analyzers.create("digression", threshold="high")
    with pytest.raises(SimError, match="analyzer.digression.threshold must be in"):
        analyzers.create("digression", threshold=5)
    with pytest.raises(SimError, match="unknown scenario 'nope' \\(available: .*roleplay"):
        scenarios.create("nope")


def test_create_needs_a_schema() -> None:
    registry: Registry[object] = Registry("thing")
    registry.register("plain")(type("Plain", (), {}))
    with pytest.raises(SimError, match="thing 'plain' has no config schema"):
        registry.create("plain")


@pytest.mark.parametrize("registry", [analyzers, scenarios, backends], ids=lambda registry: registry.group)
def test_constructors_repeat_no_default(registry: Registry[object]) -> None:
    """Every setting's default lives in the schema alone: no constructor a schema builds gives one of its own."""
    repeated = [
        f"{klass.__qualname__}.{parameter.name}"
        for name in registry.names()
        for klass in registry.get(name).__mro__ if "__init__" in vars(klass) and klass is not object
        for parameter in inspect.signature(vars(klass)["__init__"]).parameters.values()
        if parameter.default is not inspect.Parameter.empty
    ]
    assert registry.names() and repeated == []


def test_every_registered_analyzer_has_its_settings_in_the_composed_config() -> None:
    cfg = compose_config(["analyzer.free_text.embeddings=false"])
    assert sorted(cfg.analyzer) == analyzers.names()
    assert cfg.analyzer.free_text.embeddings is False and cfg.analyzer.digression.threshold == 0.9
