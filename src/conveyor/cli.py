"""The `conveyor` command: parse arguments, call the library, render, exit code.

Commands live in `conveyor.commands.*` and are imported only when invoked, so that
`conveyor --version` and `conveyor validate` start fast. Every ConveyorError ends here with
its message and exit code (2 for bad input, 1 otherwise); an interrupt exits 130.
No traceback reaches the user for a problem in their input.
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Any

import click

from conveyor import __version__

__all__ = ["main"]

# command name -> "module:attribute" of a click.Command, imported on first use.
COMMANDS: dict[str, str] = {
    "run": "conveyor.commands.run:run",
    "play": "conveyor.commands.play:play",
    "retry": "conveyor.commands.play:retry",
    "validate": "conveyor.commands.validate:validate",
    "plan": "conveyor.commands.validate:plan",
    "runs": "conveyor.commands.inspect:runs",
    "show": "conveyor.commands.inspect:show",
    "logs": "conveyor.commands.inspect:logs",
    "cancel": "conveyor.commands.inspect:cancel",
    "serve": "conveyor.commands.serve:serve",
    "monitor": "conveyor.commands.monitor:monitor",
    "worker": "conveyor.commands.worker:worker",
}

_HELP = {
    "run": "Run the pipeline in the current directory.",
    "play": "Play a manual job of a local run, inside that run.",
    "retry": "Retry a failed job of a local run, inside that run.",
    "validate": "Check a pipeline file and report every problem.",
    "plan": "Show the jobs that would run, and why the others would not.",
    "runs": "List past runs.",
    "show": "Show one run record.",
    "logs": "Print (or follow) the output of a run or one of its jobs.",
    "cancel": "Cancel a running run.",
    "serve": "Serve webhooks, the runs API and the pipeline monitor.",
    "monitor": "Sync watched pipelines once and print them.",
    "worker": "Run jobs of a conveyor server's fleet on this host.",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when one of them is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        # Importing makes no garbage cycles: collecting during it only costs start-up time.
        is_collecting = gc.isenabled()
        gc.disable()
        try:
            module = importlib.import_module(module_name)
        finally:
            if is_collecting:
                gc.enable()
        command: click.Command = getattr(module, attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing must not import every command module: use the short help kept here.
        with formatter.section("Commands"):
            formatter.write_dl([(name, _HELP[name]) for name in COMMANDS])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="conveyor")
def cli() -> None:
    """conveyor: a self-hosted CI/CD engine and pipeline monitor.

    Pipelines live in .conveyor.yml (or an existing .gitlab-ci.yml). Local state lives in
    .conveyor/ of the project (override with CONVEYOR_HOME).
    """


def main(argv: list[str] | None = None) -> Any:
    from conveyor.errors import ConveyorError

    try:
        return cli.main(args=argv, prog_name="conveyor", standalone_mode=False)
    except ConveyorError as exc:
        click.echo(str(exc), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
