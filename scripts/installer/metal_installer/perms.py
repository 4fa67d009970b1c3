"""What the metal-hammer's untar loses, recorded at build time and put back at install time.

The hammer creates every directory 0755 and applies no owners and no file capabilities (docs/contract.md
§2): /root becomes world-readable, /var/tmp loses its sticky bit, /etc/frr belongs to root, ping
loses cap_net_raw. At the end of the image build `install.py --record-permissions` writes every
entry that such an untar would get wrong to permissions.tsv next to the installer; the
"permissions" step restores them.

Format, one entry a line: <octal mode> TAB <uid> TAB <gid> TAB <capability xattr hex or -> TAB <path>
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Iterable, Iterator, List, Optional, Tuple

FORMAT_LINE = "# metal-installer permissions v1: mode uid gid capability path"
CAP_XATTR = "security.capability"
# Not part of the image: API file systems, and /tmp (the hammer mounts a tmpfs there; systemd-tmpfiles sets its mode at boot).
SKIP_TOP = ("proc", "sys", "dev", "run", "tmp")


@dataclass(frozen=True)
class Entry:
    mode: int
    uid: int
    gid: int
    cap: Optional[bytes]
    path: str


def needs_record(is_dir: bool, mode: int, uid: int, gid: int, cap: Optional[bytes]) -> bool:
    """Would the hammer's untar get this entry wrong?"""
    return (is_dir and mode != 0o755) or uid != 0 or gid != 0 or cap is not None


def format_entries(entries: Iterable[Entry]) -> str:
    lines = [FORMAT_LINE]
    for e in entries:
        lines.append(f"{e.mode:o}\t{e.uid}\t{e.gid}\t{e.cap.hex() if e.cap else '-'}\t{e.path}")
    return "\n".join(lines) + "\n"


def parse_entries(text: str) -> List[Entry]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t", 4)
        if len(parts) != 5 or not parts[4].startswith("/"):
            raise ValueError(f"line {n}: expected 5 tab-separated fields ending in an absolute path")
        mode, uid, gid, cap, path = parts
        out.append(Entry(int(mode, 8), int(uid), int(gid), None if cap == "-" else bytes.fromhex(cap), path))
    return out


def scan(root: str = "/") -> Iterator[Entry]:
    """Walk the image (one file system, no API mounts) and yield the entries to record."""
    root_dev = os.lstat(root).st_dev
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root:
            dirnames[:] = [d for d in dirnames if d not in SKIP_TOP]
        keep = []
        for name in sorted(dirnames) + sorted(filenames):
            path = os.path.join(dirpath, name)
            if "\t" in path or "\n" in path:
                continue
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if st.st_dev != root_dev:
                    continue
                keep.append(name)
            if stat.S_ISLNK(st.st_mode):
                continue
            cap = _cap(path) if stat.S_ISREG(st.st_mode) else None
            mode = stat.S_IMODE(st.st_mode)
            if needs_record(stat.S_ISDIR(st.st_mode), mode, st.st_uid, st.st_gid, cap):
                yield Entry(mode, st.st_uid, st.st_gid, cap, "/" + os.path.relpath(path, root) if root != "/" else path)
        dirnames[:] = [d for d in dirnames if d in keep]


def restore(entries: Iterable[Entry]) -> Tuple[int, int]:
    """Put owner, mode and capability back where they differ. Returns (changed, missing)."""
    changed = missing = 0
    for e in entries:
        try:
            st = os.lstat(e.path)
        except FileNotFoundError:
            missing += 1
            continue
        if stat.S_ISLNK(st.st_mode):
            continue
        did = False
        if (st.st_uid, st.st_gid) != (e.uid, e.gid):
            os.chown(e.path, e.uid, e.gid, follow_symlinks=False)  # clears set-id bits: chmod follows
            did = True
        if did or stat.S_IMODE(st.st_mode) != e.mode:
            os.chmod(e.path, e.mode)
            did = True
        if e.cap is not None and _cap(e.path) != e.cap:
            os.setxattr(e.path, CAP_XATTR, e.cap, follow_symlinks=False)
            did = True
        changed += did
    return changed, missing


def _cap(path: str) -> Optional[bytes]:
    try:
        return os.getxattr(path, CAP_XATTR, follow_symlinks=False)
    except OSError:
        return None
