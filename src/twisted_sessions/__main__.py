"""
``python -m twisted_sessions COMMAND``: the batch tools.

Commands: ``sessionize`` (see :mod:`twisted_sessions.clustering.sessionize`),
``sessionize --sse URL`` for a live feed (see :mod:`twisted_sessions.ingest.command`), and
``localsite``, a Redis Cluster, several servers and HAProxy on this machine (see
:mod:`twisted_sessions.deploy.localsite`).
"""

from __future__ import annotations

import sys

from .clustering import sessionize


def _localsite(argv: list[str]) -> int:
    from .deploy import localsite

    return localsite.main(argv)


COMMANDS = {"sessionize": sessionize.main, "localsite": _localsite}


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
    rest = args[1:]
    if args[0] == "sessionize" and any(a == "--sse" or a.startswith("--sse=") for a in rest):
        from .ingest import command

        return command.main(rest)
    return COMMANDS[args[0]](rest)


if __name__ == "__main__":
    sys.exit(main())
