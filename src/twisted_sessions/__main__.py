"""
``python -m twisted_sessions COMMAND``: the batch tools.

Commands: ``sessionize`` (see :mod:`twisted_sessions.sessionize`).
"""

from __future__ import annotations

import sys

from .clustering import sessionize

COMMANDS = {"sessionize": sessionize.main}


def main(argv: list[str] | None = None) -> int:
    """
    Dispatch to a command; exit status 2 with the list of commands for anything else.
    """
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in COMMANDS:
        sys.stderr.write(
            "usage: python -m twisted_sessions COMMAND [options]\n"
            f"commands: {', '.join(COMMANDS)} (COMMAND --help for its options)\n"
        )
        return 2
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
