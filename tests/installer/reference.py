"""Where metal-stack's reference data (../shared/reference, MIT) is: the consumers' own fixtures and
expected outputs. Read in place, never copied into the project. First hit wins: METAL_REFERENCE_DIR,
<repo>/../shared/reference, and for a clone the same path beside the repository it came from.
Same lookup as tests/helpers/reference.ts.
"""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def candidates():
    out = []
    if os.environ.get("METAL_REFERENCE_DIR"):
        out.append(os.path.abspath(os.environ["METAL_REFERENCE_DIR"]))
    out.append(os.path.join(os.path.dirname(ROOT), "shared", "reference"))
    try:
        origin = subprocess.run(["git", "-C", ROOT, "config", "--get", "remote.origin.url"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        origin = ""
    path = origin[len("file://"):] if origin.startswith("file://") else origin
    if path.startswith("/"):
        path = path[: -len("/.git")] if path.endswith("/.git") else path.rstrip("/")
        out.append(os.path.join(os.path.dirname(path), "shared", "reference"))
    return out


def reference_dir():
    for d in candidates():
        if os.path.exists(os.path.join(d, "README.md")):
            return d
    raise RuntimeError("metal-stack reference data not found (looked in: %s); set METAL_REFERENCE_DIR" % ", ".join(candidates()))


def reference_file(*parts):
    return os.path.join(reference_dir(), *parts)
