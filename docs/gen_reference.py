"""The reference pages, generated from the code at every build (mkdocs-gen-files runs this).

Nothing here is typed twice: the commands come from the typer app, the settings from the
``Settings`` class, the HTTP API from the service's OpenAPI document, the errors from the
exception tree, the Python API from the docstrings (mkdocstrings).
"""

from __future__ import annotations

import inspect
import json
import pkgutil
from typing import Any

import typer
from pydantic import BaseModel, SecretStr

from conforto import errors
from conforto._cli import app
from conforto._settings import Settings

#: The packages of the Python API, one page each, lowest layer first.
PACKAGES = (
    "data",
    "physics",
    "scoring",
    "uncertainty",
    "adaptation",
    "model",
    "training",
    "tracking",
    "predictions",
    "monitor",
    "registry",
    "lifecycle",
    "serving",
    "deploy",
)


def _cell(text: object) -> str:
    """Text fit for one cell of a Markdown table."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


# ------------------------------------------------------------------------------------ commands


def commands(group: Any = None, path: str = "conforto") -> list[tuple[str, Any]]:
    """Every visible command of the CLI, with its full name, in the app's order."""
    group = group or typer.main.get_command(app)
    ctx = typer.Context(group, info_name=path)
    found = []
    for name in group.list_commands(ctx):  # loaded, as when it runs: the root lists lazily
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        if hasattr(command, "list_commands"):  # a group
            found += commands(command, f"{path} {name}")
        else:
            found.append((f"{path} {name}", command))
    return found


def _option(param: Any) -> str:
    if param.param_type_name == "argument":
        return f"`{param.name.upper()}`"
    names = " / ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
    return names


def _default(param: Any) -> str:
    if param.required:
        return "required"
    if param.default is None or param.default == () or param.default is False:
        return ""
    return f"`{param.default}`"


def cli_reference() -> str:
    """The ``conforto`` commands: usage, help and every option."""
    lines = [
        "# Commands",
        "",
        "Generated from the command-line app. Every command prints one clear line and exits 1 on",
        "bad input; `conforto --debug …` shows the traceback. Commands that write take",
        "`--out DIR`, defaulting under `CONFORTO_HOME`; `--json` output stands alone on stdout.",
        "",
    ]
    for name, command in commands():
        ctx = typer.Context(command, info_name=name)
        usage = " ".join(command.collect_usage_pieces(ctx))
        lines += [
            f"## {name}",
            "",
            f"```\n{name} {usage}\n```",
            "",
            inspect.cleandoc(command.help or ""),
            "",
        ]
        params = [p for p in command.params if p.name != "help"]
        if params:
            lines += ["| option | help | default |", "| --- | --- | --- |"]
            for param in params:
                help_text = getattr(param, "help", None) or ""
                lines.append(
                    f"| {_option(param)} | {_cell(help_text)} | {_cell(_default(param))} |"
                )
            lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ settings


def settings(model: type[BaseModel] = Settings, prefix: str = "CONFORTO_") -> list[tuple[str, Any]]:
    """Every setting: its environment variable and its pydantic field."""
    found = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found += settings(kind, f"{prefix}{name.upper()}__")
        else:
            found.append((f"{prefix}{name.upper()}", field))
    return found


def _type(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return text or str(annotation).replace("typing.", "").replace("pathlib.", "")


def settings_reference() -> str:
    """Every ``CONFORTO_*`` variable with its type, default and description."""
    lines = [
        "# Settings",
        "",
        "Generated from `conforto._settings.Settings`: one settings class, read from `CONFORTO_*`",
        "environment variables; nested groups use `__`. An invalid value stops every command with",
        "one line naming the variable and the reason; relative paths are taken from the working",
        "folder and kept absolute. Variables a library reads itself stay that library's:",
        "`CLEARML_API_HOST`, `CLEARML_API_ACCESS_KEY`, `CLEARML_API_SECRET_KEY`,",
        "`CLEARML_OFFLINE_MODE`, `CLEARML_CACHE_DIR` (ClearML's SDK) and",
        "`PROMETHEUS_MULTIPROC_DIR` (prometheus-client; `conforto serve --workers N` sets it to a",
        "fresh folder when unset).",
        "",
        "| variable | type | default | description |",
        "| --- | --- | --- | --- |",
    ]
    for variable, field in settings():
        default = field.default
        shown = (
            ""
            if default is None
            else ("(secret)" if isinstance(default, SecretStr) else f"`{default}`")
        )
        lines.append(
            f"| `{variable}` | {_cell(_type(field.annotation))} | {_cell(shown)} "
            f"| {_cell(field.description or '')} |"
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ HTTP API


def openapi() -> dict[str, Any]:
    """The service's OpenAPI document (the app is built, not started: no model is loaded)."""
    from conforto._serving.app import create_app

    document: dict[str, Any] = create_app(settings=Settings()).openapi()
    return document


def http_reference(document: dict[str, Any] | None = None) -> str:
    """Every route of the service: method, path, summary, parameters and responses."""
    document = document or openapi()
    lines = [
        "# HTTP API",
        "",
        "Generated from the service's OpenAPI document ([openapi.json](openapi.json); a running",
        "service serves it at `/openapi.json` and renders it at `/docs`).",
        "",
    ]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            lines += [f"## {method.upper()} `{path}`", "", operation.get("summary", ""), ""]
            if operation.get("description"):
                lines += [operation["description"], ""]
            params = operation.get("parameters", [])
            if params:
                lines += ["| parameter | in | description |", "| --- | --- | --- |"]
                for p in params:
                    lines.append(
                        f"| `{p['name']}` | {p['in']} | {_cell(p.get('description', ''))} |"
                    )
                lines.append("")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                lines += [f"Body: `{_schema_name(body['schema'])}` (JSON).", ""]
            statuses = ", ".join(
                f"{code} {r.get('description', '').rstrip('.')}"
                for code, r in operation["responses"].items()
            )
            lines += [f"Responses: {statuses}.", ""]
    lines += ["## Schemas", ""]
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        lines += [f"### {name}", "", schema.get("description", ""), ""]
        properties = schema.get("properties", {})
        if properties:
            lines += ["| field | type | description |", "| --- | --- | --- |"]
            for field, spec in properties.items():
                described = _cell(spec.get("description", ""))
                lines.append(f"| `{field}` | {_cell(_json_type(spec))} | {described} |")
            lines.append("")
    return "\n".join(lines)


def _schema_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"list of {_schema_name(schema.get('items', {}))}"
    return str(schema.get("type", "object"))


def _json_type(spec: dict[str, Any]) -> str:
    if "anyOf" in spec:
        return " or ".join(_json_type(s) for s in spec["anyOf"])
    if "$ref" in spec or spec.get("type") == "array":
        return _schema_name(spec)
    return str(spec.get("type", "any"))


# ------------------------------------------------------------------------------------ errors


def error_classes(
    base: type[errors.ConfortoError] = errors.ConfortoError, depth: int = 0
) -> list[tuple[int, type[errors.ConfortoError]]]:
    """The exception tree, depth first."""
    found = [(depth, base)]
    for sub in base.__subclasses__():
        found += error_classes(sub, depth + 1)
    return found


def errors_reference() -> str:
    """Every error class with what it means, its HTTP status and the CLI's exit code."""
    lines = [
        "# Errors",
        "",
        "Generated from `conforto.errors`. Every error a user can cause or fix derives from",
        "`ConfortoError`; its message says what was wrong and what to do. The CLI prints it on",
        "one line and exits with the code below (the traceback only with `--debug`); the service",
        'answers `{"detail": message}` with the status below (the most specific class wins). A',
        "failed gate or validation is a result, not an error: those commands exit 1 after their",
        "report. Exit code 3 means there is no production model yet (a new project's first run).",
        "",
        "| error | what happened | HTTP | CLI exit |",
        "| --- | --- | --- | --- |",
    ]
    for depth, cls in error_classes():
        name = "&nbsp;&nbsp;" * 2 * depth + f"`{cls.__name__}`"
        error = cls("x")
        meaning = _cell(inspect.getdoc(cls) or "")
        status, code = errors.http_status(error), errors.exit_code(error)
        lines.append(f"| {name} | {meaning} | {status} | {code} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ Python API


def python_pages() -> dict[str, str]:
    """One page per package, for those working on conforto: mkdocstrings renders every
    module's docstrings, under a banner that says they are internals.
    """
    pages = {}
    for package in PACKAGES:
        module = __import__(f"conforto._{package}", fromlist=["_"])
        names = sorted(m.name for m in pkgutil.iter_modules(module.__path__))
        body = [
            f"# conforto._{package} (internals)",
            "",
            '!!! warning "Internal modules"',
            "    These modules may change in any release. Use the [public API](../reference/python/"
            "index.md) (`import conforto`), `conforto.errors` and the command line.",
            "",
            f"::: conforto._{package}",
            "    options:",
            "      members: false",
            "",
        ]
        for name in names:
            body += [f"::: conforto._{package}.{name}", ""]
        pages[f"internals/{package}.md"] = "\n".join(body)
    return pages


def public_page() -> str:
    """What a user calls from Python: ``conforto``'s own names, each documented where it is
    defined.
    """
    import conforto

    body = [
        "# conforto",
        "",
        "::: conforto",
        "    options:",
        "      members: false",
        "      show_root_heading: false",
        "",
    ]
    for name in conforto.__all__:
        if name in conforto._PUBLIC:
            body += [
                f"::: {conforto._PUBLIC[name]}.{name}",
                "    options:",
                "      heading_level: 3",
                "",
            ]
    body += [
        "## Modules with stable paths",
        "",
        "`conforto.errors` (every error, also exported above), `conforto.pyfunc` (named by the",
        "MLflow models the registry holds) and `python -m conforto` (the command line) keep",
        "their paths. Every other module is internal: [documented for those working on",
        "conforto](../../internals/data.md), with no stability promise.",
        "",
    ]
    return "\n".join(body)


def pages() -> dict[str, str]:
    """Every generated page, by its path in the site."""
    return {
        "reference/cli.md": cli_reference(),
        "reference/settings.md": settings_reference(),
        "reference/http.md": http_reference(),
        "reference/openapi.json": json.dumps(openapi(), indent=2),
        "reference/errors.md": errors_reference(),
        "reference/python/index.md": public_page(),
        **python_pages(),
    }


if __name__ in {"__main__", "<run_path>"}:
    import mkdocs_gen_files

    for path, text in pages().items():
        with mkdocs_gen_files.open(path, "w") as handle:
            handle.write(text)
