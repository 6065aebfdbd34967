"""
Run a program that dies with its parent: ``python _orphan_guard.py PARENT_PID
PROGRAM [ARGS...]``.

The embedded ``redis-server`` is started through this so that it never outlives the server,
even when the server is killed with SIGKILL: on Linux the kernel sends the child SIGTERM when
its parent dies (``PR_SET_PDEATHSIG``), which survives the ``exec`` below.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    """
    Arrange to be signalled when the parent dies, then become the program.
    """
    parent, program, args = int(argv[1]), argv[2], argv[2:]
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The parent may have died before prctl: then nobody would ever signal us.
    if os.getppid() != parent:
        sys.exit(f"parent {parent} is gone; not starting {program}")
    os.execv(program, args)


if __name__ == "__main__":
    main(sys.argv)
