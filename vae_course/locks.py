"""One process per run folder: an exclusive ``flock`` on the folder's ``.lock`` file.

:mod:`vae_course.runs` takes this lock before it reads or writes anything in a run folder.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:   # pragma: no cover  (Windows: no flock; runs there are not locked)
    fcntl = None

LOCK = ".lock"


class RunConflictError(RuntimeError):
    """The output directory holds something other than this run."""


class RunBusyError(RunConflictError):
    """Another live process is training into the same directory."""


class OutputPathError(OSError):
    """The output directory (``--out``) is a file, lies under a file or cannot be written."""


class RunLock:
    """An exclusive ``flock`` on ``<out_dir>/.lock``, which holds the owner's PID. The kernel
    drops it when the process ends, however it ends (SIGKILL too): a stale file never blocks a
    folder. ``release()`` deletes the file; ``release(restore=True)`` (a refused run) puts
    back what was there before."""

    def __init__(self, out_dir):
        self.path = Path(out_dir) / LOCK
        self.fd = None

    def acquire(self):
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:   # e.g. a folder named .lock, or no permission
                raise OutputPathError(f"Cannot open the lock file {self.path} ({err.strerror}). "
                                      f"Nothing was changed. Choose another --out.") from None
            self.previous = os.read(fd, 4096) or None   # None: a new (or empty) file
            if fcntl is None:
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                os.close(fd)
                raise RunBusyError(
                    f"{self.path.parent} is in use by another run (PID {holder or 'unknown'}, "
                    f"recorded in {self.path}): one run per folder. Nothing was changed. Wait "
                    f"for that run to finish or stop it, or train into another --out folder."
                ) from None
            try:   # a run that finished between our open and our flock deleted this file
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        self.fd = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return self

    def release(self, restore: bool = False):
        if self.fd is None:
            return
        try:
            if restore and self.previous is not None:
                os.ftruncate(self.fd, 0)
                os.pwrite(self.fd, self.previous, 0)
            else:
                self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)
            self.fd = None
