"""The one place where errors become messages and exit codes, shared by every command. Device-side (Python 3.6).

- ``ArgumentParser``: argparse with one-line errors (``prog: error: argument --batch-size: ...``) instead of the
  usage block, so every bad invocation answers with exactly one line on stderr and exit code 2.
- Flag types (``positive_int``, ``probability``, ...): every numeric flag is validated at parse time.
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
finite_float = _bounded(float, what="a finite number")
finite_int = _bounded(int, what="an integer")
image_side = _bounded(int, 32, what="an integer >= 32 (pixels)")
tcp_port = _bounded(int, 1, 65535, what="a TCP port (1-65535)")
# A stream's frame side: no Jetson decoder or camera gives more than 8192 pixels a side (NVDEC's largest H.265
# frame is 8192x8192 on Orin); nvstreammux allocates its whole batch at this size, so a typo must not reach it.
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
