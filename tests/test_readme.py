"""The README is a log that reproduces: its commands run as written and write under runs/, never over a tracked
file; its demo numbers are the ones in the results files named beside them (a fresh demo is compared with those
by scripts/check_demo.py in CI, within the tolerances the README states)."""
import json
import os
import re
import shlex
import shutil
import subprocess

import pytest

from tests.conftest import REPO, export_quietly, make_model, run_cli

README = os.path.join(REPO, "README.md")
OUTPUT_FLAGS = ("--output-dir", "--json", "--out", "--png", "--results-out")


def readme_commands():
    """Every command of the README's bash blocks: (argv, the comment on its last line), continuation lines joined."""
    text = open(README).read()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            code, _, comment = line.partition("  #")
            code = code.split(" # ")[0].strip()
            if code and not code.startswith("#"):
                commands.append((shlex.split(code), comment.strip()))
    return commands


def host_commands():
    """The commands run in this checkout (the board's run in the bundle folder, on the Jetson)."""
    return [argv for argv, _ in readme_commands() if argv[0] in (".venv/bin/python", "python")]


def tracked_files():
    r = subprocess.run(["git", "ls-files"], cwd=REPO, stdout=subprocess.PIPE, universal_newlines=True)
    files = set(r.stdout.split())
    if not files:
        pytest.skip("not a git checkout")
    return files


def outputs(argv):
    out = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in OUTPUT_FLAGS]
    if "edgeexport.emulate.make_clip" in argv or "edgeexport.data.make_voc" in argv:
        out.append(argv[argv.index("-m") + 2])  # their first positional argument is what they write
    return out


def test_host_commands_write_under_runs_and_never_over_a_tracked_file():
    tracked = tracked_files()
    seen = 0
    for argv in host_commands():
        for path in outputs(argv):
            seen += 1
            assert path.startswith("runs/"), (path, argv)
            assert os.path.normpath(path) not in tracked, (path, argv)
    assert seen >= 10


def test_the_demo_table_and_figures_are_the_recorded_ones():
    text = open(README).read()
    evaluation = json.load(open(os.path.join(REPO, "benchmarks", "results", "cpu2_demo_eval.json")))
    rows = re.findall(r"^\| (pytorch|onnxruntime|nvinfer) \| ([\d.]+) \| ([\d.]+) \| [^|]+ \| ([\d.]+) \| ([\d.]+) \|$",
                      text, re.M)
    assert [r[0] for r in rows] == [r["backend"] for r in evaluation["rows"]]
    for (name, m, m50, det, ips), rec in zip(rows, evaluation["rows"]):
        assert (m, m50, det, ips) == ("{:.4f}".format(rec["map"]), "{:.4f}".format(rec["map50"]),
                                      "{:.1f}".format(rec["detections_per_image"]),
                                      "{:.1f}".format(rec["images_per_second"])), name
    demo = json.load(open(os.path.join(REPO, "benchmarks", "results", "cpu2_demo.json")))
    m = re.search(r"trained\s+in\s+([\d.]+)\s+min\s+on\s+(\d+)\s+cores\s+\(1-minute\s+load\s+([\d.]+)\s+before\),"
                  r"\s+held-out\s+mAP@\.5\s+([\d.]+)", text)
    assert m, "the README states the demo's training time and held-out mAP@.5 from cpu2_demo.json"
    assert m.groups() == ("{:.1f}".format(demo["train_seconds"] / 60.0), str(demo["machine"]["cpus"]),
                          "{:.2f}".format(demo["machine"]["load_1min_before"]), "{:.2f}".format(
                              demo["held_out_map50"]))
    # the command that wrote the table writes under runs/, and check_demo.py runs that very command
    import importlib.util
    spec = importlib.util.spec_from_file_location("check_demo", os.path.join(REPO, "scripts", "check_demo.py"))
    check_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_demo)
    argv = check_demo.readme_demo_evaluate_command(README)
    assert argv[argv.index("--json") + 1].startswith("runs/")


def test_ci_runs_the_demo_and_compares_it_with_the_readme():
    ci = open(os.path.join(REPO, ".ci", "run")).read()
    assert "bash scripts/demo.sh" in ci and "scripts/check_demo.py" in ci


@pytest.fixture(scope="module")
def batch4_bundle(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("readme") / "bundle")
    export_quietly(make_model()[0], path, labels=["circle", "square", "triangle"], batch_size=4)
    return path


def test_deepstream_config_examples_run_as_written_off_the_board(batch4_bundle, tmp_path):
    from edgeexport.device import keyfile
    if not keyfile.available():
        pytest.skip("libglib-2.0 is not installed")
    examples = [argv for argv, _ in readme_commands() if argv[:3] == ["python3", "-m", "edgeexport.deepstream_config"]]
    assert len(examples) >= 2
    for argv in examples:
        bundle = str(tmp_path / "b{}".format(examples.index(argv)))
        shutil.copytree(batch4_bundle, bundle)
        r = run_cli(argv[1:], cwd=bundle)  # "." is the bundle, as on the board
        assert r.returncode == 0, (argv, r.stderr)
        assert os.path.isfile(os.path.join(bundle, "deepstream_app.txt"))


def test_the_boards_commands_name_files_the_bundle_holds():
    """deepstream_app's and build_engine's local inputs are the bundle's own clip (export --video, or the copy the
    README makes) and its validation images (export --val-data)."""
    from edgeexport.device.check.evaluate import VALIDATION_DIR
    holds = {"input.mp4", VALIDATION_DIR + "/images/"}
    named = []
    for argv, _ in readme_commands():
        if argv[:3] in (["python3", "-m", "edgeexport.deepstream_app"], ["python3", "-m", "edgeexport.build_engine"]):
            for flag in ("--source", "--calib-images"):
                named += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag and "://" not in argv[i + 1]]
    assert named and set(named) <= holds, named
    assert any(argv[:2] == ["cp", "~/my_clip.mp4"] and argv[2] == "input.mp4" for argv, _ in readme_commands())


def test_the_mqtt_example_starts_the_broker_the_setup_installs():
    commands = [argv for argv, _ in readme_commands()]
    publish = next(i for i, argv in enumerate(commands) if "--publish" in argv)
    assert any(argv[0].endswith("mosquitto") and "-d" in argv for argv in commands[:publish])
    assert "mosquitto" in open(os.path.join(REPO, "scripts", "setup_debian.sh")).read()
