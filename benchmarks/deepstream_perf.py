"""Mean FPS from deepstream-app's perf output ("**PERF:  30.12 (29.87)" lines). Python 3.6.

    python3 benchmarks/deepstream_perf.py deepstream.log
"""
import json
import re
import sys

# deepstream-app prints per-source "current (average)" pairs after **PERF:; the first interval is warm-up.
PERF = re.compile(r"\*\*PERF:\s*(.*)")
PAIR = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*\(([0-9]+(?:\.[0-9]+)?)\)")


def perf_fps(text):
    """Per-interval current FPS of source 0, warm-up interval dropped."""
    values = []
    for line in text.splitlines():
        m = PERF.search(line)
        if m:
            pairs = PAIR.findall(m.group(1))
            if pairs:
                values.append(float(pairs[0][0]))
    return values[1:] if len(values) > 1 else values


def main(path):
    with open(path) as f:
        values = perf_fps(f.read())
    if not values:
        print("no **PERF lines found in {}: was enable-perf-measurement=1 set?".format(path), file=sys.stderr)
        return 1
    result = {"intervals": len(values), "mean_fps": sum(values) / len(values), "min_fps": min(values),
              "max_fps": max(values)}
    print(json.dumps(result))
    print("deepstream-app: mean {:.1f} FPS over {} intervals".format(result["mean_fps"], result["intervals"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
