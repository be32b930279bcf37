"""Does the README reproduce? Runs the README's own demo evaluate command on a fresh demo run (scripts/demo.sh)
and compares it, and the demo's record of itself, with the results files the README's numbers come from:

    python scripts/check_demo.py runs/demo          (CI: .ci/run, after bash scripts/demo.sh)

Tolerances (stated in the README): mAP and mAP@.5 within 0.03 (torch's CPU kernels round differently across
CPUs and thread counts, and a short run of 8 epochs carries that into the weights), detections per image within
15 %, and each host row's change against PyTorch within 0.5 points as recorded. Times are printed beside the
recorded ones with the machine and its load; they are compared (within 1.5x) only on an idle machine with the
recorded number of cores, since a busy one measures the other work. One line per check; exit 1 on any failure.
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDED_DEMO = os.path.join(REPO, "benchmarks", "results", "cpu2_demo.json")
RECORDED_EVAL = os.path.join(REPO, "benchmarks", "results", "cpu2_demo_eval.json")
MAP_TOLERANCE = 0.03
DETECTIONS_TOLERANCE = 0.15
DELTA_TOLERANCE_POINTS = 0.5
TIME_FACTOR = 1.5
IDLE_LOAD = 0.5


def readme_demo_evaluate_command(readme):
    """The README's demo evaluate command (the block after "The demo model"), as argv after the interpreter."""
    text = open(readme).read()
    m = re.search(r"^The demo model.*?```bash\n(.*?)```", text, re.S | re.M)
    if not m:
        raise SystemExit("error: README.md has no demo evaluate block after 'The demo model'")
    argv = shlex.split(m.group(1).replace("\\\n", " "))
    if argv[:3] != [".venv/bin/python", "-m", "edgeexport.evaluate"]:
        raise SystemExit("error: the README's demo block is not an evaluate command: {}".format(argv[:3]))
    return argv[1:]


def option(argv, name):
    return argv[argv.index(name) + 1] if name in argv else None


def main(args):
    failures = []

    def check(ok, line):
        print(("ok    " if ok else "FAIL  ") + line)
        if not ok:
            failures.append(line)

    run = json.load(open(os.path.join(args.demo, "demo.json")))
    rec = json.load(open(RECORDED_DEMO))
    for key in ("held_out_map", "held_out_map50"):
        check(abs(run[key] - rec[key]) <= MAP_TOLERANCE,
              "demo {}: {:.4f} (recorded {:.4f}, tolerance {})".format(key, run[key], rec[key], MAP_TOLERANCE))
    idle = run["machine"]["load_1min_before"] is not None and run["machine"]["load_1min_before"] < IDLE_LOAD
    same = run["machine"]["cpus"] == rec["machine"]["cpus"]
    line = "demo training: {} s on {} cores, load {} before (recorded {} s on {} cores, load {})".format(
        run["train_seconds"], run["machine"]["cpus"], run["machine"]["load_1min_before"], rec["train_seconds"],
        rec["machine"]["cpus"], rec["machine"]["load_1min_before"])
    if idle and same:
        check(run["train_seconds"] <= TIME_FACTOR * rec["train_seconds"], line)
    else:
        print("info  " + line + ": not compared (" + ("busy" if not idle else "other core count") + ")")

    argv = readme_demo_evaluate_command(os.path.join(REPO, "README.md"))
    bundle, model = argv[2], option(argv, "--model-path")
    out = os.path.join(args.demo, "readme_eval.json")
    # the README's command, on this run's files (the README names runs/demo/, where demo.sh writes by default)
    argv = [os.path.join(args.demo, os.path.relpath(a, "runs/demo")) if a.startswith("runs/demo/") else a
            for a in argv]
    argv[argv.index("--json") + 1] = out
    r = subprocess.run([sys.executable] + argv + ["--no-progress"], cwd=REPO)
    check(r.returncode == 0, "the README's evaluate command ran ({} {})".format(bundle, model))
    if r.returncode == 0:
        got = {row["backend"]: row for row in json.load(open(out))["rows"]}
        want = {row["backend"]: row for row in json.load(open(RECORDED_EVAL))["rows"]}
        for name, w in want.items():
            g = got.get(name)
            if g is None:
                check(False, "evaluate row {} missing".format(name))
                continue
            for key in ("map", "map50"):
                check(abs(g[key] - w[key]) <= MAP_TOLERANCE, "evaluate {} {}: {:.4f} (recorded {:.4f})".format(
                    name, key, g[key], w[key]))
            d, dw = g["detections_per_image"], w["detections_per_image"]
            check(abs(d - dw) <= DETECTIONS_TOLERANCE * dw, "evaluate {} det/img: {:.1f} (recorded {:.1f})".format(
                name, d, dw))
            check(abs(g["delta_map"] - w["delta_map"]) <= DELTA_TOLERANCE_POINTS,
                  "evaluate {} change against pytorch: {:+.2f} points (recorded {:+.2f})".format(
                      name, g["delta_map"], w["delta_map"]))
    if failures:
        print("{} of the README's numbers did not reproduce".format(len(failures)), file=sys.stderr)
        return 1
    print("the README's demo numbers reproduce within the stated tolerances")
    return 0


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("demo", nargs="?", default="runs/demo", help="the folder scripts/demo.sh wrote")
    return p


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
