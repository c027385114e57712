"""The ``kgrag`` Typer app: every command, registered in the order ``kgrag --help`` lists them.

Each command group lives in its own module (build, schemas, models, eval, finetune, neo4j) as plain
functions; this module only wires them into the app, so nothing imports back from here.
"""

from __future__ import annotations

import typer

from kgrag.cli import build, eval, finetune, models, neo4j, schemas

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Build knowledge graphs from your documents.")
models_app = typer.Typer(no_args_is_help=True, help="Bundled generator models.")

app.command()(build.build)
app.command()(build.lookup)
app.command()(build.export)
app.command("schemas")(schemas.schemas_list)
app.add_typer(models_app, name="models")
models_app.command("list")(models.models_list)
models_app.command("fetch")(models.models_fetch)
models_app.command("install")(models.models_install)
app.command("serve-model")(models.serve_model)
app.command("eval")(eval.eval_command)
app.command("finetune")(finetune.finetune_command)
app.command()(neo4j.push)
app.command("serve-graph")(neo4j.serve_graph)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
