"""The ``eventsnn`` command: ``demo``, ``train``, ``eval`` and ``simulate``.

Each subcommand has its own parser (``eventsnn <command> --help``); this module only
dispatches, so a subcommand's options live next to its code.
"""
import argparse
import importlib
import sys
import warnings
from typing import List, Optional, TextIO, Type, Union

from . import __version__

#: command -> ("module:function" taking argv and returning an exit status, one-line help)
COMMANDS = {
    "demo": ("eventsnn.demo:main", "simulate a synthetic event-camera stream through a small "
                                   "network and summarise it"),
    "train": ("eventsnn.train_cli:main", "train a network with any learning rule; prints one "
                                         "JSON line of metrics"),
    "eval": ("eventsnn.eval_cli:main", "evaluate a saved model on a dataset (the training "
                                       "options come from the model file)"),
    "simulate": ("eventsnn.simulate_cli:main", "run a saved model on an event file; writes the "
                                               "output spikes (npz, CSV) and a raster PNG"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eventsnn",
        description="Event-driven spiking neural networks with exact spike times.",
        epilog="Run 'eventsnn <command> --help' for the options of a command.")
    p.add_argument("--version", action="version", version=f"eventsnn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="<command>", title="commands")
    for name, (_, text) in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    return p


def _status(exc: SystemExit) -> int:
    return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    if argv[0] not in COMMANDS:
        try:
            parser.parse_args(argv[:1])      # --help, --version, or an error (exit 2)
        except SystemExit as exc:
            return _status(exc)
        return 2
    target, _ = COMMANDS[argv[0]]
    module, func = target.split(":")
    try:
        run = getattr(importlib.import_module(module), func)
    except ImportError as exc:  # pragma: no cover - a broken install
        print(f"eventsnn {argv[0]}: error: {exc}", file=sys.stderr)
        return 2
    def one_line(message: Union[Warning, str], category: Type[Warning], filename: str,
                 lineno: int, file: Optional[TextIO] = None, line: Optional[str] = None) -> None:
        print(f"eventsnn {argv[0]}: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line  # a warning is one line, as an error is
            return run(argv[1:])
    except SystemExit as exc:   # argparse: --help (0) or a bad flag (2)
        return _status(exc)


if __name__ == "__main__":
    sys.exit(main())
