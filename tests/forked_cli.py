"""The project's commands, run by the tests in processes forked from one that has already imported torch.

A test that runs ``python -m edgeexport.export ...`` pays for a new interpreter importing torch, torchvision, ONNX
and ONNX Runtime: about 3 s on the 2-core CI machine, over a hundred times a suite. A child forked from a process
that imported them and ran nothing else is still a process of its own (its own memory, file descriptors, working
folder, environment, exit status and signals) and skips the imports. This file is both halves: run as a script it
is that process (it imports, then forks one child per request and reports the child's wait status), and imported
it is the client (``run``), which falls back to a new interpreter for what a fork would not reproduce:

- ``-c`` code and interpreter options, and runs asked for ``fresh=True``;
- an environment that differs from the one the forking process started with, in anything but ``EDGEEXPORT_*``,
  ``PYTEST_*`` and what its imports set themselves, as they would in any interpreter (OpenCV sets
  ``LD_LIBRARY_PATH``, torchvision ``TORCHINDUCTOR_CACHE_DIR``): torch and its libraries read variables such as
  ``OMP_NUM_THREADS`` when they load, too late in a fork. The child itself runs with the environment asked for,
  and so does whatever it starts;
- a forking process with a Python thread besides its main one after its imports (a fork copies only the thread
  that forks). The native threads its libraries start on import (OpenBLAS's pool with NumPy, one each with OpenCV
  and ONNX Runtime, seen in /proc/self/task) are the ones each fork of a DataLoader worker meets in the trainer;
  OpenBLAS stops its pool before a fork (memory.c: openblas_fork_handler registers blas_thread_shutdown_ with
  pthread_atfork).

In the child, what a fresh interpreter would do differently is redone: ``sys.argv`` and ``sys.path[0]`` as
``python -m`` and ``python script.py`` set them, NumPy's global generator reseeded (Python's ``random`` reseeds
itself after a fork), and at exit non-daemon threads joined, then atexit handlers, then the streams flushed.

Protocol (one request at a time): a JSON line on the server's stdin; it answers ``pid N`` when it has forked and
``status S`` (``os.waitpid``'s status) when the child has ended.
"""
import atexit
import collections
import importlib
import json
import os
import runpy
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

# What the commands import that costs seconds. OpenCV comes through the project's own accessor, which sets FFmpeg's
# log level before the import as every command does. The command modules themselves are left out on purpose: runpy
# warns when the module it runs as __main__ was imported before, and the tests read stderr.
PRELOAD = ("numpy", "PIL.Image", "edgeexport.data.frames:opencv", "matplotlib", "onnx", "onnxruntime", "torch",
           "torchvision", "torchvision.models.detection")
INHERITABLE = ("EDGEEXPORT_", "PYTEST_")


# ---- the forking process ---------------------------------------------------------------------------------------
def _reply(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _exit_code(e):
    """What the interpreter exits with for ``SystemExit(e.code)`` (it prints a code that is not an int)."""
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code & 0xFF
    sys.stderr.write("%s\n" % (e.code,))
    return 1


def _run_as_main(argv):
    if argv[0] == "-m":
        sys.argv = ["-m"] + list(argv[2:])  # runpy puts the module's file in argv[0], as python -m does
        sys.path[0] = os.getcwd()
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
        runpy.run_path(argv[0], run_name="__main__")


def _child(request):
    code, interrupted = 1, False
    try:
        stdin = os.open(os.devnull, os.O_RDONLY)
        os.dup2(stdin, 0)
        for fd, path in ((1, request["out"]), (2, request["err"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_TRUNC), fd)
        sys.stdin = open(os.devnull)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()  # a new interpreter seeds it from the OS; a fork copies one state
        _run_as_main(request["argv"])
        code = 0
    except SystemExit as e:
        code = _exit_code(e)
    except KeyboardInterrupt:
        traceback.print_exc()
        interrupted = True  # the interpreter then ends by SIGINT itself (returncode -2), so does the child
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            threading._shutdown()  # the interpreter's own exit: join non-daemon threads, then atexit, then flush
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
            if interrupted:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGINT)
        finally:
            os._exit(code)


def serve():
    started = dict(os.environ)
    for name in PRELOAD:
        module, _, call = name.partition(":")
        try:
            module = importlib.import_module(module)
            if call:
                getattr(module, call)()
        except ImportError:
            pass  # a command that needs it says so itself, as it would in a new interpreter
    changed = sorted(k for k in set(started) | set(os.environ) if started.get(k) != os.environ.get(k))
    _reply("ready %d %s" % (threading.active_count(), json.dumps(changed)))
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        _reply("pid %d" % pid)
        _reply("status %d" % os.waitpid(pid, 0)[1])


# ---- the client, in the test process -------------------------------------------------------------------------------
class _Server(object):
    def __init__(self, env, cwd):
        self.env = dict(env)
        self.log = tempfile.NamedTemporaryFile(prefix="forked_cli_", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__)], cwd=cwd, env=self.env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        self._buf = b""
        _, threads, changed = self._line(deadline=None).split(" ", 2)
        self.usable = threads == "1"
        self.set_by_imports = set(json.loads(changed))

    def _line(self, deadline):
        """The server's next line, or None when the deadline (time.monotonic) passed first."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([fd], [], [], wait)[0]:
                return None
            data = os.read(fd, 4096)
            if not data:
                with open(self.log.name) as f:
                    raise RuntimeError("the forking process ended: %s" % f.read()[-2000:])
            self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def run(self, argv, cwd, env, timeout):
        with tempfile.TemporaryDirectory(prefix="forked_cli_") as tmp:
            out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
            for path in (out, err):
                open(path, "w").close()
            request = {"argv": list(argv), "cwd": cwd, "env": env, "out": out, "err": err}
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
            deadline = None if timeout is None else time.monotonic() + timeout
            pid = int(self._line(deadline=None).split()[1])
            reply = None
            try:
                reply = self._line(deadline)
                if reply is None:
                    os.kill(pid, signal.SIGKILL)
                    self._line(deadline=None)
            except BaseException:
                self.close()  # interrupted between its two lines: the protocol's state is unknown
                raise
            outputs = []
            for path in (out, err):
                with open(path, encoding="utf-8") as f:  # strict, as subprocess.run decodes
                    outputs.append(f.read())
        cmd = [sys.executable] + list(argv)
        if reply is None:
            raise subprocess.TimeoutExpired(cmd, timeout, output=outputs[0], stderr=outputs[1])
        return subprocess.CompletedProcess(cmd, os.waitstatus_to_exitcode(int(reply.split()[1])), outputs[0],
                                           outputs[1])

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.log):
            f.close()
        os.unlink(self.log.name)


_SERVER = []
RUNS = collections.Counter()  # how each run went, for the suite's summary line
_LOCK = threading.Lock()


def _why_not_forked(argv, env, server_env, set_by_imports=()):
    """None when a fork runs ``argv`` as a new interpreter would, else the reason it would not. The child runs
    with ``env`` whatever this says (what it starts inherits that); what matters is what the forking process read
    at its start and imports, from ``server_env``, less what those imports set themselves."""
    if not argv or argv[0] != "-m" and argv[0].startswith("-"):
        return "interpreter option {}".format(argv[0] if argv else "(none)")
    changed = sorted(k for k in set(env) | set(server_env) if env.get(k) != server_env.get(k)
                     and not k.startswith(INHERITABLE) and k not in set_by_imports)
    return "environment variable {}".format(", ".join(changed)) if changed else None


def run(argv, cwd, env, timeout=600, fresh=False):
    """``subprocess.run([sys.executable] + argv, ...)`` with text output, in a forked child where that is the same.
    Returns a CompletedProcess; raises subprocess.TimeoutExpired past ``timeout`` seconds (the child is killed)."""
    with _LOCK:
        why = "asked for" if fresh else None
        if not fresh:
            if _SERVER and _SERVER[0].proc.poll() is not None:
                _SERVER.pop().close()
            if not _SERVER:
                _SERVER.append(_Server(env, cwd))
            server = _SERVER[0]
            why = (_why_not_forked(argv, env, server.env, server.set_by_imports) if server.usable
                   else "the forking process has threads")
            if why is None:
                RUNS["forked"] += 1
                return server.run(argv, cwd, env, timeout)
        RUNS["new interpreter: " + why] += 1
    return subprocess.run([sys.executable] + list(argv), cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)


def shutdown():
    with _LOCK:
        while _SERVER:
            _SERVER.pop().close()


if __name__ == "__main__":
    serve()
