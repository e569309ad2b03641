"""The layer contracts (`[tool.importlinter]` in pyproject.toml, run by `make lint`) name
every top-level module of conveyor: each is in the core or forbidden to it, so a new package
cannot slip between the two lists unchecked."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import conveyor

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _contract(contract_id: str) -> dict[str, list[str]]:
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    return next(c for c in config["contracts"] if c["id"] == contract_id)


def test_core_contract_names_every_top_level_module() -> None:
    core = _contract("core")
    named = set(core["source_modules"]) | set(core["forbidden_modules"])
    modules = {f"conveyor.{m.name}" for m in pkgutil.iter_modules(conveyor.__path__)}
    assert sorted(modules - named) == []
    assert sorted(named - modules) == []


def test_core_layers_place_every_core_module() -> None:
    layers = _contract("core-layers")["layers"]
    placed = {name.strip() for layer in layers for name in layer.split(":")}
    assert sorted(placed) == sorted(_contract("core")["source_modules"])
