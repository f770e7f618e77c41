"""The ``nllkit`` command.

One subcommand per module. Each module names its command (``NAME``, ``HELP``,
``DESCRIPTION``, ``EPILOG`` and optionally ``FORMATTER``), adds its options
(``configure(parser)``) and does the work (``run(args) -> int``). Today there are
``explain``, ``bench``, ``datasets`` (the public-domain datasets shipped
with nllkit) and ``fit`` (maximum-likelihood fits of a column of numbers).

Errors never reach the user as a traceback. Bad usage or data, including any
``ValueError``, ``TypeError`` or ``IndexError`` raised by nllkit, prints one
line, ``nllkit <command>: <message>``, on stderr and exits with code 2, as
argparse does for its own errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import NoReturn

from nllkit import __version__
from nllkit.cli import _bench, _datasets, _explain, _fit

__all__ = ["build_parser", "main"]

#: The subcommands, in the order ``nllkit --help`` lists them.
_COMMANDS: tuple[ModuleType, ...] = (_explain, _bench, _datasets, _fit)

_USAGE_ERROR = 2


class _ArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit code 2).

    Subcommand parsers are created with the same class.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(_USAGE_ERROR, f"{self.prog}: {_one_line(message)} (see '{self.prog} --help')\n")


def _one_line(message: str) -> str:
    return " ".join(message.split())


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of the ``nllkit`` command and its subcommands.

    Returns
    -------
    argparse.ArgumentParser
        Parsing a subcommand sets ``args.handler`` to its ``(args) -> int``
        function and ``args.command`` to its name.
    """
    parser = _ArgumentParser(
        prog="nllkit",
        description="nllkit: the negative log-likelihood, computed, differentiated and fitted.",
    )
    parser.add_argument("--version", action="version", version=f"nllkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _COMMANDS:
        sub = subparsers.add_parser(
            command.NAME,
            help=command.HELP,
            description=command.DESCRIPTION,
            epilog=command.EPILOG,
            formatter_class=getattr(command, "FORMATTER", argparse.RawDescriptionHelpFormatter),
        )
        command.configure(sub)
        sub.set_defaults(handler=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nllkit`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; ``sys.argv[1:]`` if omitted.

    Returns
    -------
    int
        The exit code: 0 on success (``--help`` included), 2 for bad usage or
        data (one line on stderr), 1 for an unexpected internal error (one
        line on stderr, no traceback), 130 on Ctrl-C.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else _USAGE_ERROR)
    prog = f"nllkit {args.command}"
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        code = handler(args)
        sys.stdout.flush()
        return code
    except (ValueError, TypeError, IndexError) as exc:
        print(f"{prog}: {_one_line(str(exc))}", file=sys.stderr)
        return _USAGE_ERROR
    except BrokenPipeError:
        # The reader went away (`nllkit explain | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        print(
            f"{prog}: internal error: {type(exc).__name__}: {_one_line(str(exc))} (please report this)",
            file=sys.stderr,
        )
        return 1
