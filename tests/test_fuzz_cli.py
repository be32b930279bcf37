"""The fuzzer of every command line: Hypothesis changes a cheap valid invocation of each command (a flag given a
hostile value: negative, zero, NaN, huge, empty, a folder, a file of the bundle, a path under a file; a flag
dropped, repeated, given too few values; an unknown flag; another positional) and runs it in this process as
``python -m`` would (tests/bad_input_corpus.invoke), over its own copy of the bad-input corpus. The properties, for
every run:

- exit 0, or a non-zero exit whose stderr ends with exactly one error line; never a traceback;
- nothing changed outside what the run names as its outputs (the corpus is listed before and after: size, mtime,
  inode); a command that reads a bundle leaves the bundle's own files alone (build_engine may write its engine and
  infer_config.txt: that is its job);
- no file inside the corpus opened that the run was not given (its named paths; for a named file, its siblings of
  the same stem, as a clip's ground truth);
- every run ends within its bound (BOUND_S), so a flag that multiplies work must be bounded.

Budget and seed: tests/fuzzing.py (EDGEEXPORT_FUZZ_EXAMPLES for a light command; a third of it for the commands
that train, export or evaluate a model when the changed invocation is valid).
"""
import os
import re
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .bad_input_corpus import CLI_MODULES, engine_double, invoke, make_corpus
from .fuzzing import EXAMPLES, OpenWatch, Watchdog, changed, fill, fuzz_settings, tree_state

BOUND_S = 120
HEAVY = {"export", "train", "evaluate", "host_fps", "fp16_numerics", "even_crop", "train_speed", "emulate",
         "build_engine"}
OUT = "{root}/out"
# A cheap valid run of each command: what Hypothesis changes.
BASES = {
    "export": ["--model-path", "{good}", "--output-dir", OUT + "/bundle", "--no-simplify"],
    "train": ["--dataset", "synthetic", "--synthetic-train-size", "8", "--synthetic-val-size", "4",
              "--synthetic-image-size", "96", "96", "--input-size", "96", "96", "--arch",
              "ssdlite320_mobilenet_v3_small", "--epochs", "1", "-b", "4", "--workers", "0", "--no-progress",
              "--threads", "1", "--output-dir", OUT + "/run"],
    "parity": ["{bundle}", "--backend", "onnxruntime", "--json", OUT + "/parity.json"],
    "build_engine": ["{bundle}"],
    "emulate": ["{bundle}", "--input", "{clip.mp4}", "--out", OUT + "/e.mp4", "--max-frames", "2", "--no-progress"],
    "deepstream_config": ["{bundle}", "--source", "{clip.mp4}", "--out", OUT + "/app.txt"],
    "deepstream_app": ["{bundle}", "--source", "{clip.mp4}"],
    "evaluate": ["{bundle}", "--dataset", "synthetic", "--synthetic-size", "2", "--synthetic-image-size", "96", "96",
                 "--no-progress", "--json", OUT + "/eval.json"],
    "make_clip": [OUT + "/c.mp4", "--seconds", "1", "--fps", "2", "--size", "64", "64"],
    "trt_fps": ["{bundle}", "--iterations", "2", "--warmup", "0", "--json", OUT + "/trt.json"],
    "parser_fps": ["--iterations", "2", "--json", OUT + "/parser.json"],
    "deepstream_perf": ["{perf.log}", "--json", OUT + "/perf.json"],
    "host_fps": ["--model-path", "{good}", "--iters", "1", "--warmup", "0", "--batch-sizes", "1", "--frame-size",
                 "64", "64", "--threads", "1", "--pipelines", "torch", "--json", OUT + "/host.json"],
    "fp16_numerics": ["--model-path", "{good}", "--synthetic", "1", "--json", OUT + "/fp16.json"],
    "make_voc": [OUT + "/voc", "--train", "1", "--val", "1", "--size", "64", "64"],
    "even_crop": ["{bundle}", "--synthetic-size", "2", "--json", OUT + "/crop.json"],
    "train_speed": ["--steps", "1", "--warmup", "0", "--batch-sizes", "2", "--rows", "ours", "--loader-images", "4",
                    "--workers", "0", "--json", OUT + "/speed.json"],
}
# Flags (and positionals) whose values a run writes: what it may change.
OUTPUT_DESTS = {"output_dir", "out", "json", "png", "results_out", "coco_out", "dump", "output", "timing_cache"}
VALUES = ["-1", "0", "1", "2", "nan", "inf", "1e30", "999999999999", "4294967296", "0.5", "", " ", "abc", "..", ".",
          "{root}/nope", "{afile}", "{afile}/x", "{notes}", "{notes}/todo.txt", "{bundle}", "{bundle}/model.json",
          "{bundle}/model.onnx", "{bundle}/infer_config.txt", "{bundle}/labels.txt", "{text.pth}", "{empty.pth}",
          "{corrupt.mp4}", "{clip.mp4}", "{good}", "{hostile.pth}", "{voc_corrupt}", "{coco}", "{b_json_future}",
          "{b_onnx_trunc}", OUT + "/new", OUT + "/new.json", "-", "--", "x" * 300, "/dev/video0", "rtsp://",
          "cuda:63", "bogus"]


# Flags whose valid use is minutes of legitimate work on a CPU (torch.compile): left to their own tests.
LONG_WORK = {"--compile"}


class Flag(object):
    def __init__(self, action):
        self.name = action.option_strings[-1] if action.option_strings else None
        self.dest, self.choices = action.dest, list(action.choices) if action.choices else None
        n = action.nargs
        self.counts = {None: [1], "?": [0, 1], "*": [0, 1, 2], "+": [0, 1, 2], 0: [0]}.get(n, [n] if isinstance(
            n, int) else [1])
        self.output = action.dest in OUTPUT_DESTS


def flags_of(cli):
    import importlib
    parser = importlib.import_module(CLI_MODULES[cli]).get_args_parser()
    return [Flag(a) for a in parser._actions if a.dest != "help"]


def _without(argv, name, flags):
    """``argv`` less the option ``name`` and its values (up to the next option)."""
    out, skip = [], False
    for a in argv:
        if a == name:
            skip = True
            continue
        if skip and a.startswith("-") and any(a == f.name for f in flags):
            skip = False
        if not skip:
            out.append(a)
    return out


@st.composite
def invocations(draw, cli):
    flags = flags_of(cli)
    options = [f for f in flags if f.name and f.name not in LONG_WORK]
    argv = list(BASES[cli])
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["set", "set", "set", "drop", "positional", "unknown", "repeat"]))
        if op in ("set", "repeat") and options:
            f = draw(st.sampled_from(options))
            count = draw(st.sampled_from(f.counts + ([0] if f.counts != [0] else [])))
            pool = VALUES + (f.choices or [])
            values = [str(draw(st.sampled_from(pool))) for _ in range(count)]
            if op == "set":
                argv = _without(argv, f.name, flags)
            argv += [f.name] + values
        elif op == "drop" and argv:
            del argv[draw(st.integers(0, len(argv) - 1))]
        elif op == "positional":
            argv.insert(0 if draw(st.booleans()) else len(argv), draw(st.sampled_from(VALUES)))
        elif op == "unknown":
            argv.append(draw(st.sampled_from(["--no-such-flag", "--outpu", "-x", "--json=", "--=x"])))
    return argv


@pytest.fixture(scope="module")
def world(small_checkpoint, small_bundle, tmp_path_factory):
    """The fuzzer's own corpus (a run may write where the case corpus must stay as it is), a perf log, and the
    planted file nobody names."""
    c = make_corpus(small_checkpoint, small_bundle, tmp_path_factory.mktemp("fuzz_cli"))
    c["bundle"] = os.path.join(c["root"], "bundle")  # its own: build_engine writes into the bundle it is given
    c["pristine_bundle"] = small_bundle[0]  # copied afresh before each run, so that no run sees an earlier one's
    shutil.copytree(small_bundle[0], c["bundle"])
    c["good"] = os.path.join(c["root"], "model.pth")  # inside the watched corpus: an output over it would show
    shutil.copy(small_checkpoint, c["good"])
    c["perf.log"] = os.path.join(c["root"], "perf.log")
    open(c["perf.log"], "w").write("".join("**PERF:  {0}.10 ({0}.00)\n".format(30 + i) for i in range(4)))
    return c


def _paths_named(argv, root):
    """The argv tokens that are paths inside the corpus (made absolute against the working folder)."""
    out = []
    for a in argv:
        if a and not a.startswith("--") and ("/" in a or a in (".", "..")):
            p = os.path.abspath(a)
            if p.startswith(root):
                out.append(p)
    return out


def _outputs(cli, argv, flags):
    """The paths ``argv`` names as outputs (by flag dest; the positional output of make_clip / make_voc)."""
    out = []
    names = {f.name: f for f in flags if f.name}
    for i, a in enumerate(argv):
        f = names.get(a)
        if f is not None and f.output:
            for v in argv[i + 1:i + 1 + max(f.counts)]:
                if v.startswith("--"):
                    break
                out.append(os.path.abspath(v) if v else v)
    if cli in ("make_clip", "make_voc"):
        positional = [a for a in argv if a and not a.startswith("-")]
        out += [os.path.abspath(p) for p in positional]
        out += [os.path.splitext(os.path.abspath(p))[0] + ".json" for p in positional]
    return [o for o in out if o]


ERROR_LINE = re.compile(r"^(error: .+|\S.*: error: .+|interrupted|terminated)$")


def _run(cli, argv, world, monkeypatch):
    flags = flags_of(cli)
    root = world["root"]
    out = os.path.join(root, "out")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    shutil.rmtree(world["bundle"])
    shutil.copytree(world["pristine_bundle"], world["bundle"])
    monkeypatch.chdir(world["cwd"])
    engine_double(monkeypatch)
    filled = [fill(a, world) for a in argv]
    outputs = _outputs(cli, filled, flags)
    bundle_writer = cli == "build_engine"
    # build_engine's target is the bundle folder or a file in it (its --help): either way it names the bundle
    targets = [os.path.abspath(a) if os.path.isdir(a) else os.path.dirname(os.path.abspath(a))
               for a in filled if a and os.path.exists(a)] if bundle_writer else []
    skip = [out] + outputs
    before = tree_state(root, skip)
    with OpenWatch() as watch, Watchdog(BOUND_S) as dog:
        code, stdout, err, escaped = invoke(cli, filled)
    assert not dog.fired, "{} {} ran past its bound of {} s".format(cli, filled, BOUND_S)
    assert escaped is None, "a traceback escaped {} {}:\n{}".format(cli, filled, escaped)
    assert "Traceback (most recent call last)" not in err, "{} {}:\n{}".format(cli, filled, err[-3000:])
    lines = [line for line in err.splitlines() if line.strip()]
    if code != 0:
        errors = [line for line in lines if ERROR_LINE.match(line)]
        assert len(errors) == 1 and lines[-1] == errors[0], "{} {} exited {} without one error line:\n{}".format(
            cli, filled, code, err[-3000:])
    after = tree_state(root, skip)
    moved = changed(before, after)
    if bundle_writer:  # its engine, infer_config.txt and the engine record beside it, in the bundle it was given
        moved = [p for p in moved if not any(p.startswith(t + os.sep) for t in targets)]
    assert not moved, "{} {} (exit {}) changed what it does not own: {}".format(cli, filled, code, moved[:8])
    named = _paths_named(filled, root) + outputs + targets + [world["cwd"]]
    # a named file's siblings of its stem (a clip's ground truth), an output's temporaries (.NAME.xxxxxxxx.tmp)
    stems = [os.path.splitext(p)[0] + "." for p in named] + [
        os.path.join(os.path.dirname(o), "." + os.path.basename(o) + ".") for o in outputs]
    opened = [p for p in watch.outside(root, named) if not any(p.startswith(s) for s in stems)]
    assert not opened, "{} {} opened files it was not given: {}".format(cli, filled, opened[:8])
    assert not os.path.exists(world["marker"]), "the hostile pickle ran"
    return code


@pytest.mark.parametrize("cli", sorted(CLI_MODULES))
def test_fuzz_command_line(cli, world, monkeypatch):
    examples = EXAMPLES if cli not in HEAVY else max(3, EXAMPLES // 3)

    @fuzz_settings(examples)
    @given(argv=invocations(cli))
    def run(argv):
        _run(cli, argv, world, monkeypatch)
    run()


def test_bases_are_valid(world, monkeypatch):
    """The unchanged invocations succeed where this machine can run them (so the fuzzer's changes are what fails):
    the light ones here; the commands that need TensorRT, pyds or a built benchmark answer with one line."""
    for cli in ("deepstream_config", "make_clip", "make_voc", "deepstream_perf", "build_engine", "parity"):
        assert _run(cli, BASES[cli], world, monkeypatch) == 0, cli


def test_tree_state_lists_what_a_run_may_not_change_and_skips_its_outputs_and_links_into_them(tmp_path):
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "out").mkdir()
    (root / "a").write_text("a")
    (root / "sub" / "b").write_text("b")
    (root / "out" / "c").write_text("c")
    os.symlink(str(root / "out"), str(root / "into_out"))
    os.symlink(str(root / "a"), str(root / "to_a"))
    before = tree_state(str(root), [str(root / "out")])
    assert sorted(os.path.relpath(p, str(root)) for p in before) == ["a", "sub", "sub/b", "to_a"]
    (root / "sub" / "b").write_text("bb")
    (root / "out" / "c").write_text("cc")
    assert changed(before, tree_state(str(root), [str(root / "out")])) == [str(root / "sub" / "b")]
