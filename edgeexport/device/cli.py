"""The one place where errors become messages and exit codes, shared by every command. Device-side (Python 3.6).

- ``ArgumentParser``: argparse with one-line errors (``prog: error: argument --batch-size: ...``) instead of the
  usage block, so every bad invocation answers with exactly one line on stderr and exit code 2.
- Flag types (``positive_int``, ``probability``, ``seed``, ``image_count``, ...): every numeric flag is validated
  at parse time, and those that multiply work are bounded above as well.
- ``run_cli``: parse, run ``main(args)``, turn an ``EdgeExportError`` into one line and its exit code; SIGTERM is
  raised as ``Terminated`` so that the same clean-up as Ctrl-C runs (no ``.partial`` folder or temporary left).
"""
import argparse
import logging
import math
import os
import signal
import sys

from .errors import EdgeExportError

EXIT_INTERRUPTED = 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that ``finally`` blocks and clean-ups run as for Ctrl-C."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage stays one ``--help`` away)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        kwargs.setdefault("allow_abbrev", False)  # a prefix of one flag must not silently become another
        if "prog" not in kwargs and sys.argv and os.path.basename(sys.argv[0]) == "__main__.py":
            # python -m edgeexport.train: name the command, not its __main__.py
            package = os.path.dirname(os.path.abspath(sys.argv[0]))
            kwargs["prog"] = "python -m edgeexport." + os.path.basename(package)
        super(ArgumentParser, self).__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, "{}: error: {} (see --help)\n".format(self.prog, message))


def _number(text, kind):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError("expected {}, got {!r}".format(
            "an integer" if kind is int else "a number", text))
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError("expected a finite number, got {!r}".format(text))
    return value


def _bounded(kind, low=None, high=None, low_open=False, what=None):
    def parse(text):
        value = _number(text, kind)
        too_low = low is not None and (value <= low if low_open else value < low)
        if too_low or (high is not None and value > high):
            raise argparse.ArgumentTypeError("expected {}, got {!r}".format(what, text))
        return value
    parse.__name__ = what  # argparse names the type in its messages
    return parse


positive_int = _bounded(int, 1, what="an integer >= 1")
non_negative_int = _bounded(int, 0, what="an integer >= 0")
positive_float = _bounded(float, 0.0, low_open=True, what="a number > 0")
non_negative_float = _bounded(float, 0.0, what="a number >= 0")
probability = _bounded(float, 0.0, 1.0, what="a number in [0, 1]")
positive_unit = _bounded(float, 0.0, 1.0, low_open=True, what="a number > 0 and <= 1")  # a std of [0, 1] pixels
finite_float = _bounded(float, what="a finite number")
finite_int = _bounded(int, what="an integer")
tcp_port = _bounded(int, 1, 65535, what="a TCP port (1-65535)")

# Bounded above too: a flag that multiplies work (images, frames, steps, pixels) has a ceiling far beyond any real
# run, so that a typo fails at once with the range instead of allocating until the machine gives out.
MAX_IMAGES = 1000000      # images a dataset, a generated set or an evaluation may name
MAX_BATCH = 4096          # images in one batch (train, benchmarks, engines)
MAX_ITERATIONS = 1000000  # timed steps, iterations, epochs
MAX_IMAGE_SIDE = 4096     # a network input or generated image side, pixels
MAX_PROCESSES = 512       # loader workers, threads


def int_range(low, high, what=None):
    """An argparse type: an integer in [low, high], its range in the message."""
    return _bounded(int, low, high, what=what or "an integer from {} to {}".format(low, high))


# numpy's legacy RandomState takes seeds below 2**32 (the trainer seeds it too), torch any of them
seed = int_range(0, 2 ** 32 - 1, "a seed from 0 to 4294967295")
image_side = int_range(32, MAX_IMAGE_SIDE, "an integer from 32 to {} (pixels)".format(MAX_IMAGE_SIDE))
image_count = int_range(1, MAX_IMAGES)
batch_size = int_range(1, MAX_BATCH)
iterations = int_range(1, MAX_ITERATIONS)
worker_count = int_range(0, MAX_PROCESSES)


def output_file(text):
    """An argparse type for a file to write (--json, --out): not empty, not a folder, not under a file; checked
    at parse time, before any slow work (fileio.check_output_file does the rest when the command starts)."""
    if not text or not text.strip():
        raise argparse.ArgumentTypeError("expected a file path, got an empty one")
    from .fileio import names_a_folder
    if names_a_folder(text):  # "out/" names a folder, even a new one
        raise argparse.ArgumentTypeError("{} is a folder; name a file".format(text))
    folder = os.path.dirname(os.path.abspath(text))
    while folder and not os.path.exists(folder):
        folder = os.path.dirname(folder) if os.path.dirname(folder) != folder else ""
    if folder and not os.path.isdir(folder):
        raise argparse.ArgumentTypeError("{} lies under {}, which is a file".format(text, folder))
    return text


# A stream's frame side, a bound of ours: nvstreammux allocates its whole batch at this size, so a typo must not
# reach it. 8192 is taken as the largest frame a Jetson decodes (8K); not checked against NVIDIA's documents here.
frame_side = _bounded(int, 16, 8192, what="an integer from 16 to 8192 (pixels)")


_CLI_PID = []  # the process that installed the handler


def _raise_terminated(signum, frame):
    if _CLI_PID and os.getpid() != _CLI_PID[-1]:
        # a forked helper (a multiprocessing pool's worker, a loader worker) inherits this handler; for it SIGTERM
        # must mean what it means to its parent's code: die now. Raised as an exception it can be swallowed while
        # the worker waits on its queue, and Pool.terminate() then waits for it forever (seen in a CI run).
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise Terminated()


def run_cli(get_args_parser, main, argv=None):
    """Parse, run ``main(args)``, and turn an EdgeExportError into one line on stderr and its exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("faster_coco_eval", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = get_args_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    _CLI_PID.append(os.getpid())
    try:
        result = main(args)
    except EdgeExportError as e:
        print("error: {}".format(e), file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt as e:
        print("terminated" if isinstance(e, Terminated) else "interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        signal.signal(signal.SIGTERM, previous)
        _CLI_PID.pop()
    if isinstance(result, int) and not isinstance(result, bool):
        sys.exit(result)
