"""The ``smimekit`` command group and the console-script entry point.

Commands live in one module per family and are imported only when used (so that ``smimekit inspect`` does
not pay for loading the crypto stack). To add a family, add its commands to :data:`COMMANDS`.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

import click

from ._common import CliState
from ._errors import ErrorMappingGroup

__all__ = ["COMMANDS", "cli", "main"]

# command name -> "module:attribute" inside smimekit.cli
COMMANDS: dict[str, str] = {
    "ca": "ca_cmds:ca",
    "cert": "cert_cmds:cert",
    "compose": "mime_cmds:compose",
    "decrypt": "crypt_cmds:decrypt",
    "demo": "demo:demo",
    "encrypt": "crypt_cmds:encrypt",
    "extract": "mime_cmds:extract",
    "fetch": "fetch_cmds:fetch",
    "gateway": "gateway_cmds:gateway",
    "inspect": "mime_cmds:inspect",
    "keys": "keys_cmds:keys",
    "open": "verify_cmds:open_cmd",
    "send": "send_cmds:send",
    "sign": "sign_cmds:sign",
    "verify": "verify_cmds:verify",
}


class SmimekitGroup(ErrorMappingGroup):
    """The top-level group: maps errors to exit codes and loads command modules lazily."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(f"{__package__}.{module_name}")
        command = getattr(module, attr)
        if not isinstance(command, click.Command):  # pragma: no cover - a wiring mistake
            raise TypeError(f"{target} is not a click command")
        return command


def _version() -> str:
    try:
        return version("smimekit")
    except PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
        return "unknown"


@click.group(
    "smimekit",
    cls=SmimekitGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(_version(), "--version", prog_name="smimekit", message="%(prog)s %(version)s")
@click.option(
    "--store",
    metavar="PATH|URL",
    type=str,
    envvar="SMIMEKIT_STORE",
    show_envvar=True,
    help="The certificate and key store to use (default: the one in your data directory).",
)
@click.pass_context
def cli(ctx: click.Context, store: str | None) -> None:
    """smimekit: MIME and S/MIME messages from the command line.

    Use '-' for a file name to read stdin or write stdout.
    """
    ctx.obj = CliState(store=store)


def main() -> None:
    """Run the command line (the ``smimekit`` console script)."""
    cli.main(prog_name="smimekit")
