"""The ``eventsnn`` command: ``eventsnn demo`` and ``eventsnn train``."""
import sys

USAGE = """usage: eventsnn <command> [options]

commands:
  demo     simulate an event stream through a small network and summarise it
  train    train a network (see: eventsnn train --help)
"""


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "demo":
        from .demo import main as demo_main
        return demo_main(rest)
    if command == "train":
        from .train_cli import main as train_main
        return train_main(rest)
    print(f"eventsnn: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
