"""The only module that runs commands and writes files. Every command is an argv list (no shell),
is logged before it runs, and a failure becomes a StepError naming the command, its exit code and
the end of its output."""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
import time
from typing import IO, List, Optional

# The hammer's chroot inherits whatever environment it had; the installer uses its own.
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LOG_FILE = "/var/log/metal-installer.log"
EXIT_MEANING = {126: "not executable", 127: "command not found", 137: "killed (SIGKILL, out of memory?)", 143: "terminated (SIGTERM)"}


class StepError(Exception):
    """A step cannot go on; the message says why and, where possible, what to do."""


class Log:
    """Logs to stderr (the hammer shows it) and to LOG_FILE in the installed system once it can."""

    def __init__(self, stream: IO[str] = sys.stderr) -> None:
        self.stream = stream
        self.file: Optional[IO[str]] = None
        self.early: List[str] = []  # lines logged before the file could be opened

    def open_file(self, path: str = LOG_FILE) -> None:
        """Called once the inputs are checked: from then on the log is kept in the installed system."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self.file = os.fdopen(fd, "a", encoding="utf-8")
        except OSError as e:
            self.line(f"cannot write the log file {path}: {e.strerror}; logging to stderr only")
            return
        self.file.writelines(self.early)
        self.early = []
        self.file.flush()

    def line(self, msg: str) -> None:
        text = f"metal-installer: {msg}\n"
        self.stream.write(text)
        self.stream.flush()
        stamped = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}"
        if self.file:
            self.file.write(stamped)
            self.file.flush()
        else:
            self.early.append(stamped)


LOG = Log()


def which(tool: str) -> Optional[str]:
    return shutil.which(tool, path=PATH)


def run(argv: List[str], stdin: Optional[str] = None, cwd: Optional[str] = None, quiet: bool = False, timeout: int = 600) -> str:
    """Run argv, return its stdout. stdin is never logged (it may hold the password)."""
    LOG.line("  $ " + " ".join(_quote(a) for a in argv))
    env = {"PATH": PATH, "LC_ALL": "C.UTF-8", "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}
    try:
        p = subprocess.run(argv, input=stdin, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    except FileNotFoundError:
        raise StepError(f"{argv[0]}: command not found (exit 127): the image lacks it") from None
    except subprocess.TimeoutExpired:
        raise StepError(f"{' '.join(argv)}: no result after {timeout}s") from None
    if p.returncode != 0:
        meaning = EXIT_MEANING.get(p.returncode, "")
        tail = "\n".join((p.stderr.strip() or p.stdout.strip()).splitlines()[-15:])
        raise StepError(f"{' '.join(_quote(a) for a in argv)} failed with exit code {p.returncode}{f' ({meaning})' if meaning else ''}" + (f":\n{tail}" if tail else ""))
    if not quiet:
        for line in (p.stdout + p.stderr).strip().splitlines()[-40:]:
            LOG.line("    " + line)
    return p.stdout


def write(path: str, text: str, mode: int = 0o644, owner: Optional[str] = None, group: Optional[str] = None) -> None:
    """Write text to path with exactly this mode (and owner). A symlink at path is replaced by a
    file (resolv.conf may point into /run); an existing file is rewritten in place."""
    if os.path.islink(path):
        os.unlink(path)
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    chown(path, owner, group)
    os.chmod(path, mode)


def chown(path: str, owner: Optional[str], group: Optional[str]) -> None:
    if owner is None and group is None:
        return
    uid = pwd.getpwnam(owner).pw_uid if owner else -1
    gid = grp.getgrnam(group).gr_gid if group else -1
    os.chown(path, uid, gid, follow_symlinks=False)


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _quote(a: str) -> str:
    safe = all(c.isalnum() or c in "@%+=:,./-_" for c in a)
    return a if a and safe else "'" + a.replace("'", "'\\''") + "'"
