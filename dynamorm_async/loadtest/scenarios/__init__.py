"""The load-test scenarios, by ``--scenario`` name.

Each scenario lives in its own module and is imported only when chosen, so a scenario
whose component is missing (say, the payment processor) fails alone, with
:class:`~.base.ScenarioUnavailable` and a message saying what is missing.
"""

from __future__ import annotations

import importlib

from .base import Sample, Scenario, ScenarioSettings, ScenarioUnavailable, error_label, timed

__all__ = [
    "SCENARIOS",
    "Sample",
    "Scenario",
    "ScenarioSettings",
    "ScenarioUnavailable",
    "error_label",
    "make_scenario",
    "scenario_class",
    "timed",
]

#: ``--scenario`` name -> its module in this package (which defines ``scenario_class()``).
SCENARIOS: dict[str, str] = {"payments": "payments", "mixed": "mixed", "batch": "batch"}


def scenario_class(name: str) -> type[Scenario]:
    """The scenario class registered as ``name``.

    Raises ``ValueError`` for an unknown name and :class:`ScenarioUnavailable` when the
    scenario's component is not available in this installation.
    """
    try:
        module_name = SCENARIOS[name]
    except KeyError:
        raise ValueError(
            f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}"
        ) from None
    module = importlib.import_module(f"{__name__}.{module_name}")
    cls: type[Scenario] = module.scenario_class()
    return cls


def make_scenario(name: str, settings: ScenarioSettings) -> Scenario:
    """A new scenario ``name`` configured by ``settings``."""
    return scenario_class(name)(settings)
