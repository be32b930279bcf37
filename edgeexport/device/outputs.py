"""The one output policy every command follows. Device-side (Python 3.6).

A run names what it reads (``reads``: files and folders the user gave; ``bundle``: the bundle folder, whose own
files no output may replace), then asks for each output before any slow work:

- ``file(path, flag)``: an output file may not be one of the inputs, a file of the bundle, or inside an input
  folder (the next run would read it as an image of the set); nor a folder, nor under a file. Its folder is
  created. Stale temporaries of a killed earlier writer beside it are swept.
- ``folder(path, flag)``: a folder a run fills may not overlap an input folder nor hold an input file.
- ``write_text`` / ``write_bytes`` / ``write_with``: atomic (fileio: the old content or the whole new one, never
  half), and the path is remembered;
- ``report()``: one line per output, "wrote PATH", so a user knows where each went.

Folder outputs (export's bundle, train's run folder, make_voc's dataset) keep their own rule, stricter: a bundle
is replaced only as far as its manifest lists what export wrote; a run folder holding checkpoints is refused
without --resume or --force; a dataset is written only into an empty folder.
"""
import os

from .errors import UsageError
from .fileio import (atomic_write_bytes, atomic_write_text, atomic_write_with, check_can_create_folder,
                     check_output_file, is_inside, remove_stale_temporaries)


class RunOutputs(object):
    def __init__(self, reads=(), bundle=None, echo=print):
        self.files, self.folders = [], []
        for p in reads:
            if p and os.path.isdir(p):
                self.folders.append(p)
            elif p:
                self.files.append(p)
        if bundle is not None:
            self.files += bundle.own_files()
        self.echo, self.claimed, self.written = echo, [], []

    def file(self, path, flag="the output"):
        """``path`` checked as an output of this run (see the module); returns it. None passes through."""
        if path is None:
            return None
        for folder in self.folders:
            if is_inside(path, folder):
                raise UsageError("{} {} lies inside {}, which this run reads: writing there would add to (or "
                                 "replace part of) its input; choose another path".format(flag, path, folder))
        for other, other_flag in self.claimed:
            if os.path.abspath(other) == os.path.abspath(path):
                raise UsageError("{} and {} name the same file {}".format(other_flag, flag, path))
        check_output_file(path, inputs=self.files, what=flag)
        remove_stale_temporaries(os.path.dirname(os.path.abspath(path)), [os.path.basename(path)])
        self.claimed.append((path, flag))
        return path

    def folder(self, path, flag="the output folder"):
        """A folder this run fills (a dump, per-row results): not an input folder nor inside one, and not holding
        an input file or the bundle. Returns it. None passes through."""
        if path is None:
            return None
        for other in self.folders:
            if is_inside(path, other) or is_inside(other, path):
                raise UsageError("{} {} overlaps {}, which this run reads; choose another folder".format(
                    flag, path, other))
        for f in self.files:
            if is_inside(f, path):
                raise UsageError("{} {} holds {}, which this run reads; choose another folder".format(flag, path, f))
        check_can_create_folder(path)
        return path

    def _done(self, path):
        self.written.append(path)
        return path

    def write_text(self, path, text, private=False):
        atomic_write_text(path, text, private)
        return self._done(path)

    def write_bytes(self, path, data):
        atomic_write_bytes(path, data)
        return self._done(path)

    def write_with(self, path, writer):
        atomic_write_with(path, writer)
        return self._done(path)

    def record(self, path):
        """An output written by another writer (a video encoder through fileio.atomic_output_path)."""
        return self._done(path)

    def report(self):
        for path in self.written:
            self.echo("wrote {}".format(path))
