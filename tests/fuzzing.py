"""What the fuzz tests share: the budget and seed, the hostile values, the mutations of a valid file, and the
three watches every run is held to (what it opened, how long it ran, what it changed).

Budget and seed: EDGEEXPORT_FUZZ_EXAMPLES (examples per fuzz target, default 25; CI runs the default) and
EDGEEXPORT_FUZZ_SEED (default 20261203). The same seed and budget give the same runs, so a failure in CI is a
failure here. Hypothesis' example database is off: no run depends on an earlier one.
"""
import json
import os
import re
import stat
import sys
import threading
import _thread

from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st


EXAMPLES = int(os.environ.get("EDGEEXPORT_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("EDGEEXPORT_FUZZ_SEED", "20261203"))


def fuzz_settings(examples=None):
    """Hypothesis settings for one fuzz target: a fixed budget, no deadline per example (our own watchdog bounds a
    run), no database, no shrinking beyond what finds the smallest failing case quickly."""
    def wrap(test):
        test = settings(max_examples=examples or EXAMPLES, deadline=None, database=None, print_blob=True,
                        suppress_health_check=list(HealthCheck))(test)
        return seed(SEED)(test)
    return wrap


# ---- hostile values ---------------------------------------------------------------------------------------------
# Tokens a user's file or flag may hold where a number, a name or a path belongs. "{outside}" and "{outside_abs}"
# become, at run time, a relative and an absolute path to a file outside every folder the run was given.
TOKENS = ["", " ", "-1", "0", "1", "-0", "0.5", "nan", "inf", "-inf", "1e309", "1e30", "999999999999999999999",
          "4294967296", "0x10", "abc", "é", "\ufeff", "\r", ";", ",", '"', "a;b", "x" * 300, "..", ".", "/",
          "{outside}", "{outside_abs}", "a/../../{outside}"]
JSON_VALUES = [None, True, False, 0, -1, 1, 0.5, -0.0, 1e308, float("nan"), float("inf"), -float("inf"), 2 ** 64,
               -2 ** 63, "", " ", "x", "1", "nan", "{outside}", "{outside_abs}", "a/../../{outside}", [], {}, [1, 2],
               [[0, 0, 10, 10]], {"a": 1}, ["x"], [None], "x" * 300]


def fill(value, names):
    """Put the run's own paths into a hostile value (a string, or one nested in JSON)."""
    if isinstance(value, str):
        return re.sub(r"\{([^{}]+)\}", lambda m: names.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    return value


# ---- mutations of a valid JSON document -------------------------------------------------------------------------
def json_paths(doc, prefix=()):
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += json_paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:4]):  # the first items stand for the rest
            out += json_paths(v, prefix + (i,))
    return out


def json_edits(doc, max_edits=3):
    """A strategy of edit lists for ``doc``: (path, op, value) with op replace / delete / duplicate / retype."""
    paths = json_paths(doc)
    edit = st.tuples(st.sampled_from(paths), st.sampled_from(["replace", "replace", "delete", "duplicate", "retype"]),
                     st.sampled_from(JSON_VALUES))
    return st.lists(edit, min_size=1, max_size=max_edits)


def _child(node, key):
    if isinstance(node, dict):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and key < len(node):
        return node[key]
    return None


def apply_json_edits(doc, edits, names):
    doc = json.loads(json.dumps(doc))
    for path, op, value in edits:
        value = fill(value, names)
        if not path:
            doc = value if op in ("replace", "retype") else doc
            continue
        parent = doc
        for key in path[:-1]:
            parent = _child(parent, key)
        key = path[-1]
        if not isinstance(parent, (dict, list)) or (isinstance(parent, dict) and key not in parent) or \
                (isinstance(parent, list) and not (isinstance(key, int) and key < len(parent))):
            continue  # an earlier edit removed or retyped the way there
        old = parent[key]
        if op == "replace":
            parent[key] = value
        elif op == "delete":
            del parent[key]
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(json.loads(json.dumps(old)))
        elif op == "retype":  # the same value, another JSON type
            parent[key] = str(old) if not isinstance(old, str) else ([old] if old else 0)
    return doc


def dump_json(doc):
    """As json.dump writes (NaN and Infinity included: Python's writer does, so our readers meet them)."""
    return json.dumps(doc)


# ---- mutations of a valid text file (lines of fields) -----------------------------------------------------------
FIELD = re.compile(r"[^\s,;=<>]+")


def text_edits(max_edits=3):
    edit = st.tuples(st.sampled_from(["field", "field", "delete_line", "duplicate_line", "insert_line", "truncate",
                                      "bytes"]),
                     st.integers(0, 10 ** 6), st.integers(0, 10 ** 6), st.sampled_from(TOKENS),
                     st.binary(min_size=1, max_size=8))
    return st.lists(edit, min_size=1, max_size=max_edits)


def apply_text_edits(data, edits, names):
    """``data`` (bytes) with each edit applied: a field (a run of characters between separators) replaced by a
    hostile token, a line deleted, duplicated or inserted, the file truncated, or raw bytes spliced in."""
    for op, a, b, token, raw in edits:
        token = fill(token, names).encode("utf-8")
        lines = data.split(b"\n")
        i = a % max(len(lines), 1)
        if op == "field":
            text = lines[i].decode("utf-8", "replace")
            spans = [m.span() for m in FIELD.finditer(text)]
            if spans:
                s, e = spans[b % len(spans)]
                lines[i] = (text[:s].encode("utf-8") + token + text[e:].encode("utf-8"))
        elif op == "delete_line" and lines:
            del lines[i]
        elif op == "duplicate_line" and lines:
            lines.insert(i, lines[i])
        elif op == "insert_line":
            lines.insert(i, token)
        data = b"\n".join(lines)
        if op == "truncate":
            data = data[:a % (len(data) + 1)]
        elif op == "bytes":
            k = a % (len(data) + 1)
            data = data[:k] + raw + data[k:]
    return data


# ---- the watches ------------------------------------------------------------------------------------------------
class OpenWatch(object):
    """The files a run opens from Python (io.open, os.open: what json, csv, ElementTree, PIL and numpy read through)
    and through OpenCV's imread/VideoCapture, whose C code Python's audit hook does not see (wrapped instead)."""
    _installed = False
    _active = []

    def __init__(self):
        self.paths = []

    @classmethod
    def _hook(cls, event, args):
        if cls._active and event == "open" and args and isinstance(args[0], (str, bytes)):
            path = args[0].decode("utf-8", "replace") if isinstance(args[0], bytes) else args[0]
            cls._active[-1].paths.append(os.path.abspath(path))

    def __enter__(self):
        if not OpenWatch._installed:
            sys.addaudithook(OpenWatch._hook)  # cannot be removed: inactive outside a watch
            OpenWatch._installed = True
        try:
            import cv2
        except ImportError:
            cv2 = None
        self._cv2 = cv2
        if cv2 is not None:
            self._imread, self._capture = cv2.imread, cv2.VideoCapture
            watch = self

            def imread(path, *a, **k):
                watch.paths.append(os.path.abspath(str(path)))
                return watch._imread(path, *a, **k)

            def capture(source, *a, **k):
                if isinstance(source, str):
                    watch.paths.append(os.path.abspath(source))
                return watch._capture(source, *a, **k)
            cv2.imread, cv2.VideoCapture = imread, capture
        OpenWatch._active.append(self)
        return self

    def __exit__(self, *exc):
        OpenWatch._active.pop()
        if self._cv2 is not None:
            self._cv2.imread, self._cv2.VideoCapture = self._imread, self._capture
        return False

    def outside(self, zone, allowed):
        """Opened paths inside ``zone`` (a folder) but inside none of ``allowed`` (paths the run was given)."""
        zone = os.path.realpath(zone)
        allowed = [os.path.realpath(a) for a in allowed if a]
        bad = []
        for p in self.paths:
            real = os.path.realpath(p)
            if not _under(real, zone) or any(_under(real, a) for a in allowed):
                continue
            bad.append(p)
        return sorted(set(bad))


def _under(path, folder):
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class Watchdog(object):
    """Interrupts the main thread (KeyboardInterrupt, as Ctrl-C) when a run outlives its bound; ``fired`` says so.
    A thread, not SIGALRM: pytest-timeout owns that signal."""

    def __init__(self, seconds):
        self.seconds, self.fired = seconds, False

    def _fire(self):
        self.fired = True
        _thread.interrupt_main()

    def __enter__(self):
        self.timer = threading.Timer(self.seconds, self._fire)
        self.timer.daemon = True
        self.timer.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.timer.cancel()
        return False


def tree_state(root, skip=()):
    """{path: (size, mtime_ns, inode, mode)} of everything under ``root`` (links not followed), minus ``skip``
    and what lies under it: what a run may not change."""
    skip = [os.path.realpath(s) for s in skip if s]
    state = {}
    for folder, dirs, files in os.walk(root):
        real = os.path.realpath(folder)
        if any(_under(real, s) for s in skip):
            dirs[:] = []
            continue
        for name in dirs + files:
            p = os.path.join(folder, name)
            st_ = os.lstat(p)
            # an entry that is not a link is where its folder really is: one lstat, not one per path component
            if any(_under(os.path.realpath(p) if stat.S_ISLNK(st_.st_mode) else os.path.join(real, name), s)
                   for s in skip):
                continue
            # a folder's own size and mtime move when anything is created in it (a temporary, renamed away): its
            # entries are listed themselves
            isdir = stat.S_ISDIR(st_.st_mode)
            state[p] = (None if isdir else st_.st_size, None if isdir else st_.st_mtime_ns, st_.st_ino, st_.st_mode)
    return state


def changed(before, after):
    keys = set(before) | set(after)
    return sorted(k for k in keys if before.get(k) != after.get(k))


__all__ = ["EXAMPLES", "SEED", "fuzz_settings", "TOKENS", "JSON_VALUES", "fill", "json_edits", "apply_json_edits",
           "dump_json", "text_edits", "apply_text_edits", "OpenWatch", "Watchdog", "tree_state", "changed"]
