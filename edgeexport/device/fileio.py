"""Atomic writes: a file either has its old content or its complete new one, never half of it; reading a JSON file
someone handed us; and the paths such a file names, kept inside the folder it came with.

Device-side (Python 3.6).
"""
import json
import os
import re
import shutil
import tempfile


def read_json(path, hint="", error=None):
    """The JSON document at ``path``. Whatever cannot be read, or is not UTF-8 JSON (truncated, binary, nested past
    the parser's depth), raises one ``error`` (default InputFileError) naming the file; ``hint`` says what to do."""
    from .errors import InputFileError
    error = error or InputFileError
    try:
        with open(path, "rb") as f:
            data = f.read()
    except Exception as e:  # by design: a file we cannot read is not one we can use, whatever the reason
        raise error("cannot read {}: {}{}".format(path, getattr(e, "strerror", None) or e, hint))
    try:
        return json.loads(data.decode("utf-8"))
    except Exception as e:  # by design: anything that does not decode as JSON is "not JSON"
        raise error("{} is not valid JSON ({}){}".format(path, e, hint))


def is_inside(path, folder):
    """``path`` is ``folder`` or lies under it, symlinks resolved."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def names_a_folder(path):
    """``path`` is a folder, or is written as one ("out/", ".", ".."): not a file to write."""
    return os.path.isdir(path) or os.path.basename(path) in ("", ".", "..")


def file_inside(folder, name, suffix=""):
    """``folder/name+suffix`` when ``name`` is a plain file name (no separator, not '.' or '..', no control
    character) and the path, symlinks resolved, stays inside ``folder``; else None. Annotation files name images
    and ids: what they name is read only from the dataset's own folders."""
    name = str(name)
    if not name or name in (".", "..") or "/" in name or "\\" in name or any(ord(c) < 32 for c in name):
        return None
    path = os.path.join(folder, name + suffix)
    real, base = os.path.realpath(path), os.path.realpath(folder)
    return path if real.startswith(base.rstrip(os.sep) + os.sep) else None


def path_inside(folder, relative):
    """``folder/relative`` for a relative path (sub-folders allowed, as COCO's file_name has them) that, symlinks
    resolved, stays inside ``folder``; else None. What a file names is read only from the folder it was given."""
    if not isinstance(relative, str) or not relative or os.path.isabs(relative) or \
            any(ord(c) < 32 for c in relative):
        return None
    path = os.path.join(folder, relative)
    real, base = os.path.realpath(path), os.path.realpath(folder)
    return path if real.startswith(base.rstrip(os.sep) + os.sep) else None


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_public(path, directory=False):
    """mkstemp/mkdtemp create owner-only files; give the result the permissions a plain open() would."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def _atomic_write(path, write, mode, private=False):
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if not private:  # mkstemp's owner-only mode stays on a file that holds a secret
            make_public(tmp)
        os.replace(tmp, path)  # atomic on POSIX within one filesystem
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data):
    _atomic_write(path, lambda f: f.write(data), "wb")


def atomic_write_text(path, text, private=False):
    """``private``: readable by its owner alone (a file holding a password)."""
    _atomic_write(path, lambda f: f.write(text), "w", private)


def atomic_write_with(path, writer):
    """Call ``writer(file_object)`` on a temporary file in the same folder, then rename it to ``path``."""
    _atomic_write(path, writer, "wb")


class atomic_output_path(object):
    """``with atomic_output_path("out.mp4") as tmp: writer(tmp)``: for writers that need a file name (a video
    encoder), a temporary beside the target with the same extension, renamed into place only on success and
    removed on failure or interruption. Same temporary shape as the other writers, so the same sweep finds it."""

    def __init__(self, path):
        self.path = os.fspath(path)

    def __enter__(self):
        folder = os.path.dirname(os.path.abspath(self.path))
        ext = os.path.splitext(self.path)[1]
        fd, self.tmp = tempfile.mkstemp(prefix="." + os.path.basename(self.path) + ".", suffix=".tmp" + ext,
                                        dir=folder)
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and os.path.isfile(self.tmp) and os.path.getsize(self.tmp) > 0:
            make_public(self.tmp)
            os.replace(self.tmp, self.path)
        elif os.path.exists(self.tmp):
            os.unlink(self.tmp)
        return False


def make_temporary_folder(path):
    """A hidden sibling folder ``.<name>.<8 chars>.partial`` to build ``path`` in before renaming it into place."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(os.path.abspath(path)) + ".", suffix=".partial", dir=folder)
    make_public(tmp, directory=True)
    return tmp


def _temporary_pattern(name):
    # The shapes mkstemp/mkdtemp give this module's temporaries: ".<name>.<8 random chars>.tmp" for files (plus
    # the name's own extension where a writer needs it, atomic_output_path) and ".<name>.<8 chars>.partial" for
    # folders.
    ext = re.escape(os.path.splitext(name)[1])
    return re.compile(r"^\." + re.escape(name) + r"\.[A-Za-z0-9_]{8}\.(tmp(" + ext + r")?|partial)$")


def remove_stale_temporaries(folder, names):
    """Delete temporaries (files and .partial folders) that a killed writer (SIGKILL, power loss) left beside
    ``names`` in ``folder``.

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
            full = os.path.join(folder, entry)
            try:
                if os.path.isdir(full) and not os.path.islink(full):
                    shutil.rmtree(full)
                else:
                    os.unlink(full)
                removed.append(entry)
            except FileNotFoundError:
                pass
    return removed


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


# A file system name holds 255 bytes (NAME_MAX on ext4, XFS, btrfs); an output is first written as a hidden
# temporary beside it, ".<name>.<8 chars>.tmp<ext>", so its own name must leave room for that.
MAX_OUTPUT_NAME = 255 - 24


def _check_name_lengths(path, what):
    from .errors import InputFileError
    for part in os.path.abspath(path).split(os.sep):
        if len(part.encode("utf-8", "surrogateescape")) > MAX_OUTPUT_NAME:
            raise InputFileError("{} {}...: the name {}... is {} bytes long; a name may have at most {}".format(
                what, path[:60], part[:20], len(part.encode("utf-8", "surrogateescape")), MAX_OUTPUT_NAME))


def check_output_file(path, inputs=(), what="the output"):
    """Make sure ``path`` can be written as a new file before any slow work: its folder is created when missing,
    and it must be neither a folder nor one of ``inputs`` (writing the result over the source loses the source).
    Raises UsageError / InputFileError with the path in the message."""
    from .errors import InputFileError, UsageError
    path = os.fspath(path)
    _check_name_lengths(path, what)
    for src in inputs:
        if src is not None and os.path.exists(path) and _same_file(path, src):
            raise UsageError("{} {} is the input {}: writing it would destroy the input; choose another "
                             "output path".format(what, path, src))
    if names_a_folder(path):
        raise InputFileError("{} {} is a folder; name a file".format(what, path))
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise InputFileError("cannot create the folder {} for {} {}: {}".format(
            folder, what, path, e.strerror or e))
    if not os.access(folder, os.W_OK):
        raise InputFileError("cannot write {} {}: the folder {} is not writable".format(what, path, folder))
    return path


def check_can_create_folder(path):
    """``path`` is a folder, or can become one: its nearest existing ancestor is a writable folder. Checked before
    slow work so that a run does not fail at its end (or leave half its output) on a path under a file."""
    from .errors import InputFileError
    path = os.path.abspath(os.fspath(path))
    _check_name_lengths(path, "the output folder")
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise InputFileError("the output folder {} is a file".format(path))
        probe = path
    else:
        probe = os.path.dirname(path)
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        if not os.path.isdir(probe):
            raise InputFileError("cannot create the output folder {}: {} is a file".format(path, probe))
    if not os.access(probe, os.W_OK):
        raise InputFileError("cannot create or write the output folder {}: {} is not writable".format(path, probe))
    return path
