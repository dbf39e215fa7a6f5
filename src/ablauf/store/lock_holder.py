"""Which process holds a store file's write lock, and whether it is stopped.

SQLite's locks are POSIX record locks, which the kernel keeps for a process
that is stopped (SIGSTOP, Ctrl-Z) as long as it lives: a process frozen inside
a write transaction keeps every other process from writing until it continues
or ends. The kernel lists the locks in ``/proc/locks``; this module reads the
holder of the write lock of a file in WAL mode from there (opening the lock
file ourselves is not an option: closing any descriptor of a file drops the
POSIX locks this process holds on it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Holder", "write_lock_holder"]

# The byte of the ``-shm`` file that SQLite's unix VFS locks for the WAL's
# single writer (UNIX_SHM_BASE 120 + WAL_WRITE_LOCK 0).
_WRITE_LOCK_BYTE = "120"


@dataclass(frozen=True)
class Holder:
    """A process that holds the write lock, as this process sees it."""

    pid: int
    started: str
    """The process's start time in clock ticks since boot: with ``pid``, it
    names one process, not whichever later gets the same pid."""
    state: str
    """The kernel's one-letter state: ``T`` stopped by a signal, ``t``
    stopped by a debugger, ``R``/``S``/``D`` running or waiting."""
    command: str

    @property
    def stopped(self) -> bool:
        """Stopped by a signal (not by a debugger, which a person is driving)."""
        return self.state == "T"

    def describe(self) -> str:
        return f"pid {self.pid}, {self.command!r}" + (", stopped" if self.stopped else "")


def write_lock_holder(path: str) -> Holder | None:
    """The process holding the write lock of the store file at ``path``, if
    one holds it, lives in this PID namespace and can be read."""
    try:
        inode = os.stat(f"{path}-shm").st_ino
        with open("/proc/locks") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return None
    for line in lines:
        # "1: POSIX  ADVISORY  WRITE 3436 fe:00:2146351 120 120"; waiting
        # requests ("1: -> POSIX ...") hold nothing.
        fields = line.split()
        if len(fields) != 8 or fields[1] != "POSIX" or fields[3] != "WRITE":
            continue
        if fields[6] != _WRITE_LOCK_BYTE or fields[5].rsplit(":", 1)[-1] != str(inode):
            continue
        pid = int(fields[4])
        # A holder outside this PID namespace is listed as pid 0.
        return _process(pid) if pid > 0 else None
    return None


def _process(pid: int) -> Holder | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return None
    # The command name in parentheses may itself hold spaces and parentheses.
    fields = stat[stat.rindex(")") + 2 :].split()
    # A kernel thread has no command line, only the name in parentheses.
    command = " ".join(a.decode(errors="replace") for a in argv if a)
    command = command or stat[stat.index("(") + 1 : stat.rindex(")")]
    return Holder(pid=pid, started=fields[19], state=fields[0], command=command)
