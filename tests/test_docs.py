"""The docs site builds with `mkdocs build --strict`: a broken link, a missing page or a bad
reference fails here. The CLI and recipe references are generated from the code at build time."""

import html
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS_PACKAGES = ("mkdocs", "material", "mkdocstrings_handlers.python")
missing = [name for name in DOCS_PACKAGES if importlib.util.find_spec(name.split(".")[0]) is None
           or importlib.util.find_spec(name) is None]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if missing:
        pytest.skip(f"the docs packages are not installed ({', '.join(missing)}): pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
                           cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert build.returncode == 0, build.stdout + build.stderr
    return out


def page(site, name: str) -> str:
    return html.unescape((site / name / "index.html").read_text(encoding="utf-8"))


def test_the_site_builds_strictly_with_every_page(site):
    for name in ("installation", "quickstart", "recipes", "recipe-reference", "tasks", "evaluation",
                 "distillation", "scaling", "cli", "api", "results", "findings"):
        assert (site / name / "index.html").is_file(), name


def test_the_cli_reference_is_every_command_s_own_help(site):
    import typer

    from r1kit.cli import app

    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="r1kit")
    text = page(site, "cli")
    for name in root.list_commands(ctx):
        assert f"r1kit {name}" in text
        command = root.get_command(ctx, name)
        assert (command.help or "").split("\n")[0].strip().split("`")[0] in text


def test_the_recipe_reference_has_every_stage_kind_and_key(site):
    from r1kit import recipe

    text = page(site, "recipe-reference")
    for kind, model in recipe._KINDS.items():
        assert f"kind: {kind}" in text
        for name, field in model.model_fields.items():
            assert f"<code>{field.alias or name}</code>" in text, (kind, name)


def test_readme_fits_and_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250
    commands = lines[lines.index("```bash") + 1:][:2]
    assert commands[0].endswith("r1kit quickstart") and commands[1].endswith("python -m pytest -x -q")


def test_the_complete_recipe_in_the_docs_is_valid():
    from r1kit import recipe

    text = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    example = text.split("## A complete recipe", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    parsed = recipe.validate(recipe.read_yaml(example), "docs/recipes.md")
    assert {stage.kind for stage in parsed.stages} == set(recipe._KINDS)
    smoked = recipe.read_yaml(example)
    for key, value in smoked["smoke"].items():
        recipe.apply_override(smoked, key, value)
    recipe.validate(smoked, "docs/recipes.md --smoke")
