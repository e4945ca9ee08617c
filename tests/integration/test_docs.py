"""The documentation: its references cover the code, and its examples run."""

from __future__ import annotations

import contextlib
import io
import json
import re
import runpy
import shlex
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

from conforto._serving.app import create_app
from conforto._settings import Settings
from tests.factories import REPO

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration
DOCS = REPO / "docs"


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    """The generator of the reference pages, as the site's build runs it."""
    return runpy.run_path(str(DOCS / "gen_reference.py"), run_name="reference")


def _blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page.read_text(), flags=re.S)


def test_every_command_appears_in_the_reference(reference: dict[str, Any]) -> None:
    text = reference["cli_reference"]()
    names = [name for name, _ in reference["commands"]()]
    assert {"conforto model upgrade", "conforto monitor drift", "conforto serve"} <= set(names)
    for name in names:
        assert f"## {name}\n" in text
    assert "validate-model" not in text  # hidden aliases stay out


def test_every_setting_appears_in_the_reference(reference: dict[str, Any]) -> None:
    text = reference["settings_reference"]()
    variables = [variable for variable, _ in reference["settings"]()]
    assert len(variables) == len(set(variables)) > 30
    for variable in variables:
        assert f"| `{variable}` |" in text
    assert "`CONFORTO_SERVE__ADMIN_TOKEN`" in text
    for field in Settings.model_fields:
        assert f"CONFORTO_{field.upper()}" in text


def test_every_route_and_error_appears_in_the_reference(reference: dict[str, Any]) -> None:
    text = reference["http_reference"]()
    routes = [
        r for r in create_app(settings=Settings()).routes if getattr(r, "include_in_schema", False)
    ]
    assert routes
    for route in routes:
        for method in route.methods:  # type: ignore[attr-defined]
            assert f"## {method} `{route.path}`" in text  # type: ignore[attr-defined]
    errors = reference["errors_reference"]()
    for _, cls in reference["error_classes"]():
        assert f"`{cls.__name__}`" in errors


def test_the_getting_started_curl_answers_as_shown(serve: Any, trained_model: Path) -> None:
    server = serve("--model", str(trained_model))
    (curl,) = [b for b in _blocks(DOCS / "getting-started.md", "sh") if b.startswith("curl")]
    command = shlex.split(curl.replace("\\\n", " ").replace("localhost:8000", server.url))
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    answer = json.loads(done.stdout)
    (shown,) = _blocks(DOCS / "getting-started.md", "json")
    assert set(answer) == set(json.loads(shown))  # the same fields
    assert answer["predicted_class"] in answer["prediction_set"]


def test_the_python_example_scores_as_shown(trained_model: Path) -> None:
    (example,) = _blocks(DOCS / "guides" / "model.md", "python")
    code = example.replace('".conforto/models/latest"', repr(str(trained_model)))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "docs/guides/model.md", "exec"), {})  # noqa: S102 - our own docs
    lines = printed.getvalue().splitlines()
    assert "predicted_class" in lines[0]
    assert len(lines) == 3  # the header and the two rooms, both scored
    assert all(re.search(r"\b(cool|neutral|warm)\b", line) for line in lines[1:])


def test_make_docs_figures_finds_every_figure_in_a_models_report(trained_model: Path) -> None:
    figures = runpy.run_path(str(DOCS / "figures.py"), run_name="figures")
    found = figures["figures"]((trained_model / "report.html").read_text())
    for name, heading in figures["FROM_MODEL_REPORT"].items():
        assert found[heading].startswith(b"\x89PNG"), name
        assert (DOCS / "images" / name).is_file()  # and the page's copy is committed
