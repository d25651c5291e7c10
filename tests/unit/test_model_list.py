"""Every place that names the models agrees with the one list, `shared.schema.MODELS`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import main
from models.__main__ import parser
from models.recipes import RECIPES
from shared.schema import MODELS

REPO = Path(__file__).resolve().parents[2]


def bash_array(script: str, name: str) -> list[str]:
    match = re.search(rf"^{name}=\(([^)]*)\)$", script, re.MULTILINE)
    assert match is not None, f"the script has no {name}=(...)"
    return match.group(1).split()


def test_deploy_sh_deploys_a_function_and_a_folder_for_every_model() -> None:
    script = (REPO / "deploy.sh").read_text()

    assert bash_array(script, "HTTP_FUNCTIONS") == [m.function for m in MODELS.values()]
    assert bash_array(script, "MODELS") == list(MODELS)


def test_make_serve_serves_every_models_function() -> None:
    script = (REPO / "scripts" / "serve.sh").read_text()

    assert bash_array(script, "FUNCTIONS") == [m.function for m in MODELS.values()]
    for model in MODELS.values():
        assert f"[{model.function}]=" in script  # its port


def test_openapi_describes_every_model_under_its_function_and_nothing_else() -> None:
    spec = yaml.safe_load((REPO / "openapi.yaml").read_text())

    functions = {path.split("/")[1] for path in spec["paths"]}
    tags = {tag["name"] for tag in spec["tags"]}

    assert functions == {m.function for m in MODELS.values()}
    assert tags == set(MODELS)
    for model in MODELS.values():
        assert f"/{model.function}/v1/models/{model.name}" in spec["paths"]
        assert f"/{model.function}/v2/models/{model.name}/infer" in spec["paths"]


def test_every_model_has_a_training_recipe_of_its_own_schema() -> None:
    assert set(RECIPES) == set(MODELS)
    for name, recipe in RECIPES.items():
        assert recipe.name == name
        assert recipe.schema == MODELS[name].schema


def test_main_exports_the_http_function_of_every_model() -> None:
    http_functions = {m.function for m in MODELS.values()}

    assert http_functions <= set(main.__all__)
    assert set(main.__all__) - http_functions == {"score_upload", "retrain_on_upload"}
    for model in MODELS.values():
        assert callable(getattr(main, model.function))


@pytest.mark.parametrize("command", ["train", "publish", "rollback"])
def test_the_cli_offers_exactly_the_listed_models(command: str) -> None:
    commands = next(action for action in parser()._actions if action.dest == "command").choices  # type: ignore[union-attr]
    name = next(action for action in commands[command]._actions if action.dest == "name")

    assert sorted(name.choices) == sorted(MODELS)
