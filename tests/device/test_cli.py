"""run_cli: one line and an exit code for every failure; SIGTERM cleans up like Ctrl-C; flags validated at parse."""
import argparse
import os
import signal

import pytest

from edgeexport.device import cli
from edgeexport.device.errors import InputFileError


def _parser():
    p = cli.ArgumentParser(prog="prog")
    p.add_argument("--n", type=cli.positive_int, default=1)
    p.add_argument("--p", type=cli.probability, default=0.5)
    p.add_argument("--x", type=cli.positive_float, default=1.0)
    return p


@pytest.mark.parametrize("argv,word", [(["--n", "0"], ">= 1"), (["--n", "x"], "an integer"),
                                       (["--p", "1.5"], "[0, 1]"), (["--x", "nan"], "finite"),
                                       (["--x", "-1"], "> 0"), (["--nn", "1"], "unrecognized")])
def test_bad_flags_are_one_line_and_exit_2(argv, word, capsys):
    with pytest.raises(SystemExit) as e:
        cli.run_cli(_parser, lambda a: 0, argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and word in err and err.startswith("prog: error")


def test_errors_are_one_line_with_their_exit_code(capsys):
    def main(args):
        raise InputFileError("model.pth is not a checkpoint")
    with pytest.raises(SystemExit) as e:
        cli.run_cli(_parser, main, [])
    assert e.value.code == 2 and capsys.readouterr().err == "error: model.pth is not a checkpoint\n"


def test_sigterm_runs_the_same_cleanup_as_ctrl_c(tmp_path, capsys):
    cleaned = []

    def main(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pause() if hasattr(signal, "pause") else None
        finally:
            cleaned.append(True)
    with pytest.raises(SystemExit) as e:
        cli.run_cli(_parser, main, [])
    assert e.value.code == cli.EXIT_INTERRUPTED and cleaned == [True]
    assert capsys.readouterr().err.strip() == "terminated"
    assert signal.getsignal(signal.SIGTERM) is not cli._raise_terminated  # restored


def test_a_forked_worker_dies_of_sigterm_instead_of_raising(tmp_path):
    # a worker forked under run_cli inherits its handler; one that swallows exceptions (as a pool worker waiting
    # on its queue can) must still die of SIGTERM, or Pool.terminate() waits for it forever
    import multiprocessing
    import time
    ready = str(tmp_path / "ready")

    def worker():
        open(ready, "w").close()
        while True:
            try:
                time.sleep(0.05)
            except BaseException:  # swallows Terminated, as a stuck worker would
                pass

    def main(args):
        p = multiprocessing.get_context("fork").Process(target=worker)
        p.start()
        deadline = time.time() + 30
        while not os.path.exists(ready) and time.time() < deadline:
            time.sleep(0.01)
        p.terminate()
        p.join(10)
        alive = p.is_alive()
        if alive:
            p.kill()
            p.join()
        return 0 if not alive and p.exitcode == -signal.SIGTERM else 3
    with pytest.raises(SystemExit) as e:
        cli.run_cli(_parser, main, [])
    assert e.value.code == 0


def test_abbreviations_are_not_accepted():
    p = cli.ArgumentParser()
    p.add_argument("--input-size")
    with pytest.raises(SystemExit):
        p.parse_args(["--input", "3"])


@pytest.mark.parametrize("flag_type, good, bad", [
    (cli.seed, ["0", "4294967295"], ["-1", "4294967296", "1.5"]),
    (cli.image_count, ["1", "1000000"], ["0", "1000001", "999999999999"]),
    (cli.batch_size, ["1", "4096"], ["0", "100000"]),
    (cli.image_side, ["32", "4096"], ["31", "100000"]),
    (cli.worker_count, ["0", "512"], ["-1", "513"]),
    (cli.tcp_port, ["1", "65535"], ["0", "70000"]),
    (cli.positive_unit, ["1e-6", "1"], ["0", "1.5", "1e30", "nan", "inf"]),
])
def test_flags_that_multiply_work_are_bounded_on_both_sides(flag_type, good, bad):
    for text in good:
        flag_type(text)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match="expected"):
            flag_type(text)

