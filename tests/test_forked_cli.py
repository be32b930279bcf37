"""tests/forked_cli.py: a command run in a forked child answers as it does in a new interpreter."""
import os
import signal
import subprocess
import sys
import time

import pytest

from . import forked_cli
from .conftest import REPO, run_cli


@pytest.mark.parametrize("argv", [["-m", "edgeexport.train", "--bogus"],
                                  ["export.py", "--model-path", "/nonexistent/model.pth"],
                                  ["benchmarks/train_speed.py", "--help"]])
def test_a_forked_run_prints_and_exits_as_a_new_interpreter_does(argv):
    forked, fresh = run_cli(argv), run_cli(argv, fresh=True)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert forked.args == fresh.args == [sys.executable] + argv


def _script(tmp_path, body):
    path = tmp_path / "script.py"
    path.write_text(body)
    return str(path)


def test_argv_path_cwd_environment_and_exit_status(tmp_path):
    script = _script(tmp_path, "import os, sys\nimport numpy\nprint(sys.argv[1:], sys.path[0], os.getcwd())\n"
                               "print(os.environ.get('EDGEEXPORT_PROBE'), numpy.random.randint(1 << 30))\n"
                               "sys.exit(sys.argv[1])\n")
    runs = [run_cli([script, "3"], cwd=tmp_path, env={"EDGEEXPORT_PROBE": str(i)}) for i in range(2)]
    for i, r in enumerate(runs):
        assert r.returncode == 1 and r.stderr == "3\n"  # a string given to sys.exit is printed, the status is 1
        first, second = r.stdout.splitlines()
        assert first == "['3'] {} {}".format(tmp_path, tmp_path)
        assert second.split()[0] == str(i)
    # NumPy's global generator is seeded per process, as in a new interpreter, not copied from the forking one
    assert runs[0].stdout.split()[-1] != runs[1].stdout.split()[-1]


def test_an_uncaught_exception_and_an_atexit_handler(tmp_path):
    script = _script(tmp_path, "import atexit\natexit.register(print, 'at exit')\nraise ValueError('boom')\n")
    r = run_cli([script])
    assert r.returncode == 1 and "Traceback" in r.stderr and r.stderr.rstrip().endswith("ValueError: boom")
    assert r.stdout == "at exit\n"


def test_an_uncaught_keyboard_interrupt_ends_the_process_by_sigint_as_python_does(tmp_path):
    script = _script(tmp_path, "raise KeyboardInterrupt\n")
    forked, fresh = run_cli([script]), run_cli([script], fresh=True)
    assert forked.returncode == fresh.returncode == -signal.SIGINT
    assert forked.stderr.rstrip().endswith("KeyboardInterrupt") and fresh.stderr.rstrip().endswith("KeyboardInterrupt")


def test_past_its_timeout_the_child_is_killed_and_the_next_run_works(tmp_path):
    script = _script(tmp_path, "import os, sys, time\nprint(os.getpid())\nsys.stdout.flush()\ntime.sleep(60)\n")
    t0 = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as e:
        run_cli([script], timeout=2)
    assert time.monotonic() - t0 < 30
    pid = int(e.value.output)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped by the forking process: gone
    assert run_cli(["-m", "edgeexport.train", "--help"]).returncode == 0


def test_what_a_fork_would_not_reproduce_runs_in_a_new_interpreter():
    server_env = dict(os.environ, PYTHONPATH=REPO)
    why = forked_cli._why_not_forked
    assert why(["-m", "x"], dict(server_env, EDGEEXPORT_X="1", PYTEST_CURRENT_TEST="t"), server_env) is None
    assert why(["-m", "x"], dict(server_env, OMP_NUM_THREADS="1"), server_env) == "environment variable OMP_NUM_THREADS"
    assert why(["-c", "pass"], server_env, server_env) == "interpreter option -c"
    assert why(["-W", "error", "-m", "x"], server_env, server_env) == "interpreter option -W"
    r = run_cli(["-c", "import sys; print('torch' in sys.modules)"])
    assert r.stdout == "False\n"  # a new interpreter: the forking process's imports are not there
