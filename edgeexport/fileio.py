"""Atomic writes: a file either has its old content or its complete new one, never half of it.

Device-side (Python 3.6).
"""
import os
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
