"""Atomic writes: a file either has its old content or its complete new one, never half of it.

Device-side (Python 3.6).
"""
import os
import re
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_public(path, directory=False):
    """mkstemp/mkdtemp create owner-only files; give the result the permissions a plain open() would."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def _atomic_write(path, write, mode):
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        make_public(tmp)
        os.replace(tmp, path)  # atomic on POSIX within one filesystem
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data):
    _atomic_write(path, lambda f: f.write(data), "wb")


def atomic_write_text(path, text):
    _atomic_write(path, lambda f: f.write(text), "w")


def atomic_write_with(path, writer):
    """Call ``writer(file_object)`` on a temporary file in the same folder, then rename it to ``path``."""
    _atomic_write(path, writer, "wb")


def _temporary_pattern(name):
    # The exact shape mkstemp gives _atomic_write's temporaries: ".<name>.<8 random chars>.tmp".
    return re.compile(r"^\." + re.escape(name) + r"\.[A-Za-z0-9_]{8}\.tmp$")


def remove_stale_temporaries(folder, names):
    """Delete temporaries that a killed writer (SIGKILL, power loss) left beside ``names`` in ``folder``.

    A process killed mid-write cannot clean up after itself; the final names stay whole, but the hidden
    temporary remains (and an engine's is tens of MB on a Jetson's small disk). The next writer of the same
    names sweeps them. Returns the names removed.
    """
    if not os.path.isdir(folder):
        return []
    patterns = [_temporary_pattern(n) for n in names]
    removed = []
    for entry in sorted(os.listdir(folder)):
        if any(p.match(entry) for p in patterns):
            try:
                os.unlink(os.path.join(folder, entry))
                removed.append(entry)
            except FileNotFoundError:
                pass
    return removed
