import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from edgeexport.model.checkpoint import load_model, read_checkpoint

from ..conftest import REPO, run_cli

TINY = ["-m", "edgeexport.train.cli", "--dataset", "synthetic", "--arch", "ssdlite320_mobilenet_v3_small",
        "--synthetic-train-size", "16", "--synthetic-val-size", "8", "--synthetic-image-size", "160", "160",
        "-b", "8", "--lr", "0.01", "--warmup-iters", "1", "-j", "0", "--no-progress", "--threads", "2",
        "--bn-momentum", "0.1", "--data-augmentation", "ssdlite"]


def test_train_writes_checkpoints_metrics_and_plot(tmp_path):
    out = tmp_path / "run"
    r = run_cli(TINY + ["--epochs", "2", "--output-dir", str(out)])
    assert r.returncode == 0, r.stderr
    assert "mAP@.5" in r.stdout and "img/s" in r.stdout
    hist = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in hist] == [0, 1]
    assert all(0.0 <= h["map50"] <= 1.0 and h["images_per_s"] > 0 and h["epoch_seconds"] > 0 for h in hist)
    assert all(0.0 <= h["input_wait_seconds"] <= h["epoch_seconds"] for h in hist) and "input wait" in r.stdout
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model, meta, raw = load_model(str(out / "best.pth"))
    assert meta.labels == ["circle", "square", "triangle"] and meta.provenance["epoch"] in (0, 1)
    assert "train_state" in read_checkpoint(str(out / "last.pth"))


def test_progress_lines_without_a_terminal(tmp_path):
    """Piped output gets plain progress lines (tqdm draws nothing there): a long epoch never looks hung."""
    args = [a for a in TINY if a != "--no-progress"]
    r = run_cli(args + ["--epochs", "1", "--output-dir", str(tmp_path / "run")],
                env={"EDGEEXPORT_LOG_EVERY_S": "0"})
    assert r.returncode == 0, r.stderr
    assert "  epoch 0 1/2 loss=" in r.stdout and "  epoch 0 2/2 loss=" in r.stdout, r.stdout


def test_resume_after_the_last_epoch_says_so(tmp_path):
    out = tmp_path / "run"
    assert run_cli(TINY + ["--epochs", "1", "--output-dir", str(out)]).returncode == 0
    r = run_cli(TINY + ["--epochs", "1", "--output-dir", str(out), "--resume", str(out / "last.pth")])
    assert r.returncode == 2 and "raise --epochs" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_new_run_does_not_replace_an_earlier_runs_results(tmp_path):
    out = tmp_path / "run"
    assert run_cli(TINY + ["--epochs", "1", "--output-dir", str(out)]).returncode == 0
    before = {n: (out / n).read_bytes() for n in ("best.pth", "metrics.json")}
    r = run_cli(TINY + ["--epochs", "1", "--output-dir", str(out), "--seed", "5"])
    assert r.returncode == 2 and "holds an earlier run" in r.stderr and "--force" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert {n: (out / n).read_bytes() for n in before} == before
    r = run_cli(TINY + ["--epochs", "1", "--output-dir", str(out), "--seed", "5", "--force"])
    assert r.returncode == 0, r.stderr
    assert (out / "best.pth").read_bytes() != before["best.pth"]


def _weights(path):
    return read_checkpoint(str(path))["model"]


def test_kill_9_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path):
    epochs = ["--epochs", "3", "--synthetic-train-size", "48"]
    straight = tmp_path / "straight"
    r = run_cli(TINY + epochs + ["--output-dir", str(straight)])
    assert r.returncode == 0, r.stderr

    killed = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen([sys.executable] + TINY + epochs + ["--output-dir", str(killed)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not (killed / "metrics.json").exists():
        time.sleep(0.05)
    time.sleep(0.5)  # well inside epoch 1 (each epoch is 6 steps plus an evaluation)
    assert proc.poll() is None, "training ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # The checkpoint on disk is whole: it loads, and it holds the last completed epoch.
    state = read_checkpoint(str(killed / "last.pth"))["train_state"]
    assert state["epoch"] in (0, 1)
    assert [h["epoch"] for h in json.loads((killed / "metrics.json").read_text())][0] == 0
    if (killed / "curves.png").exists():
        assert (killed / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # SIGKILL can land inside a write: then only that write's hidden temporary is left, never a final name
    # half-written. Plant one so that the sweep on resume is checked every time, not only when the kill hits.
    (killed / ".curves.png.a1b2c3d4.tmp").write_bytes(b"\x89PNG half")
    leftovers = [n for n in os.listdir(str(killed)) if n.endswith(".tmp")]
    assert all(n.startswith(".") for n in leftovers), leftovers

    r = run_cli(TINY + epochs + ["--output-dir", str(killed), "--resume", str(killed / "last.pth")])
    assert r.returncode == 0, r.stderr
    assert "resumed from" in r.stdout
    assert not [n for n in os.listdir(str(killed)) if n.endswith(".tmp")], "the resumed run left temporaries"
    a, b = _weights(straight / "last.pth"), _weights(killed / "last.pth")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed training diverged from the uninterrupted run"
    hist = json.loads((killed / "metrics.json").read_text())
    assert [h["epoch"] for h in hist] == [0, 1, 2]


def test_resume_refuses_a_checkpoint_without_train_state(tmp_path):
    r = run_cli(TINY + ["--epochs", "1", "--output-dir", str(tmp_path / "a")])
    assert r.returncode == 0, r.stderr
    r = run_cli(TINY + ["--epochs", "2", "--output-dir", str(tmp_path / "b"), "--resume",
                        str(tmp_path / "a" / "best.pth")])
    assert r.returncode == 2 and "train_state" in r.stderr


def test_a_bad_resume_file_is_refused_before_the_data_is_built(tmp_path, monkeypatch):
    """--resume is read first: a file that is not a last.pth costs no rendering (the synthetic set is drawn in a
    pool of forked processes, seconds of work) and no model."""
    import pytest
    from edgeexport.device.errors import CheckpointError
    from edgeexport.train import cli
    not_a_checkpoint = tmp_path / "last.pth"
    not_a_checkpoint.write_text("not a checkpoint")

    def built(args):
        raise AssertionError("the datasets were built before --resume was read")
    monkeypatch.setattr(cli, "build_datasets", built)
    args = cli.get_args_parser().parse_args(["--resume", str(not_a_checkpoint), "--output-dir", str(tmp_path / "o")])
    with pytest.raises(CheckpointError, match="last.pth"):
        cli.main(args)


def test_cuda_graphs_are_refused_under_torchrun_before_anything_is_built(tmp_path, monkeypatch):
    """--compile-mode reduce-overhead has run in one process only (the H200); several are refused up front."""
    from edgeexport.device.errors import UsageError
    from edgeexport.train import cli
    monkeypatch.setattr(cli.D, "init_distributed", lambda: (0, 2, 0))  # rank 0 of 2, as torchrun would start it

    def built(args):
        raise AssertionError("the datasets were built before the flags were checked")
    monkeypatch.setattr(cli, "build_datasets", built)
    args = cli.get_args_parser().parse_args(["--compile", "--compile-mode", "reduce-overhead", "--output-dir",
                                             str(tmp_path / "o")])
    with pytest.raises(UsageError, match="one process; under torchrun \\(2 processes\\)"):
        cli.main(args)


def test_bad_dataset_is_one_clear_error(tmp_path):
    r = run_cli(TINY + ["--epochs", "1", "--dataset", "voc", "--data-path", str(tmp_path / "nothing"),
                        "--output-dir", str(tmp_path / "o")])
    assert r.returncode == 2 and "not a VOC folder" in r.stderr and "Traceback" not in r.stderr


def test_a_cpu_decode_share_without_the_gpu_decode_is_one_clear_error(tmp_path):
    r = run_cli(TINY + ["--epochs", "1", "--decode", "cpu", "--cpu-decode-share", "0.3", "--output-dir",
                        str(tmp_path / "o")])
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: --cpu-decode-share divides each batch between the loader workers and nvJPEG: pass --decode gpu with "
        "it (this run has --decode cpu)"]
    assert not (tmp_path / "o").exists()
    r = run_cli(TINY + ["--epochs", "1", "--cpu-decode-share", "1.5", "--output-dir", str(tmp_path / "o")])
    assert r.returncode == 2 and "expected a number in [0, 1], got '1.5'" in r.stderr


def test_crop_on_gpu_without_a_gpu_is_one_clear_error(tmp_path):
    r = run_cli(TINY + ["--epochs", "1", "--crop-on", "gpu", "--output-dir", str(tmp_path / "o")])
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: --crop-on gpu needs a CUDA device; this run is on cpu"]
    assert not (tmp_path / "o").exists()


def test_a_reduced_decode_scale_off_the_cpu_decode_is_one_clear_error(tmp_path):
    r = run_cli(TINY + ["--epochs", "1", "--decode", "gpu", "--decode-scale", "reduced", "--output-dir",
                        str(tmp_path / "o")])
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: --decode-scale reduced is --decode cpu's (the loader workers' libjpeg); this run has --decode gpu"]
    # rendered images: --decode cpu is torchvision's v2 pipeline here, which decodes nothing
    r = run_cli(TINY + ["--epochs", "1", "--decode-scale", "reduced", "--output-dir", str(tmp_path / "o")])
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: --decode-scale reduced is --decode cpu's (the loader workers' libjpeg); this run decodes with cpu-v2 "
        "(--decode cpu falls back to cpu-v2 for rendered data, the ssd preset, --preprocess nvinfer, --loss "
        "torchvision)"]
    assert not (tmp_path / "o").exists()


def test_help_lists_the_recipe():
    r = run_cli(["-m", "edgeexport.train.cli", "--help"])
    for flag in ("--resume", "--amp", "--lr", "--warmup-iters", "--data-augmentation", "--seed", "--workers",
                 "--on-bad-annotation", "--pretrained-backbone", "--crop-on", "--decode-scale"):
        assert flag in r.stdout


def test_torchrun_two_processes_with_gloo(tmp_path):
    """DistributedDataParallel through torchrun on the CPU (gloo): rank 0 evaluates and writes."""
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = dict(os.environ, PYTHONPATH=REPO)
    args = [a for a in TINY if a not in ("--threads", "2")][1:]  # drop "-m"; one thread per process
    r = subprocess.run([torchrun, "--nproc_per_node=2", "-m"] + args + ["--threads", "1", "--epochs", "2",
                        "--output-dir", str(tmp_path / "ddp")], cwd=REPO, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("epoch ") == 2 and r.stdout.count("trained 2 epochs") == 1  # rank 0 alone reports
    hist = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert [h["epoch"] for h in hist] == [0, 1]
    load_model(str(tmp_path / "ddp" / "best.pth"))


def test_a_non_finite_loss_stops_the_epoch_with_the_step_and_its_terms():
    """The loss is read every few steps (a read is a sync): the first read that is not finite stops training with
    the epoch, the steps it lies between, the last step's loss terms, and what to try."""
    import pytest
    from edgeexport.device.errors import TrainingError
    from edgeexport.train.loop import train_one_epoch

    class Model(torch.nn.Module):  # finite for the first three batches, then not
        def __init__(self):
            super(Model, self).__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, images, boxes, labels, valid):
            bad = float("nan") if images[0, 0, 0, 0] > 2 else 1.0
            return {"bbox_regression": self.w * bad, "classification": self.w * 2.0}
    model = Model()
    w = model.w
    batches = [(torch.full((1, 3, 2, 2), float(i)), torch.zeros(1, 1, 4), torch.ones(1, 1, dtype=torch.long),
                torch.ones(1, 1, dtype=torch.bool)) for i in range(6)]
    opt = torch.optim.SGD([w], lr=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    with pytest.raises(TrainingError) as e:
        train_one_epoch(model, opt, sched, batches, torch.device("cpu"), 3, show_progress=False, batched=True,
                        params=[w])
    msg = str(e.value)
    assert msg.startswith("the loss diverged at epoch 3, between steps 2 and 6")
    assert "last step's terms: bbox_regression nan, classification " in msg
    assert "--lr" in msg and "--clip-grad-norm" in msg


def test_a_step_replayed_as_cuda_graphs_is_marked_before_its_forward(monkeypatch):
    """--compile-mode reduce-overhead: each step begins a new CUDA-graph iteration before the model runs (the last
    step's outputs are overwritten from then on), once per step, and only when asked."""
    from edgeexport.train.loop import train_one_epoch
    events = []

    class Model(torch.nn.Module):
        def __init__(self):
            super(Model, self).__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, images, boxes, labels, valid):
            events.append("forward")
            return {"bbox_regression": self.w * images.mean(), "classification": self.w * 0.0}
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: events.append("mark"))
    model = Model()
    batches = [(torch.full((1, 3, 2, 2), float(i)), torch.zeros(1, 1, 4), torch.ones(1, 1, dtype=torch.long),
                torch.ones(1, 1, dtype=torch.bool)) for i in range(3)]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    out = train_one_epoch(model, opt, sched, batches, torch.device("cpu"), 0, show_progress=False, batched=True,
                          graphs=True)
    assert events == ["mark", "forward"] * 3 and out["loss"] > 0
    events.clear()
    train_one_epoch(model, opt, sched, batches, torch.device("cpu"), 0, show_progress=False, batched=True)
    assert events == ["forward"] * 3


def test_a_diverging_run_is_one_line_and_keeps_the_last_good_epoch(tmp_path, monkeypatch, capsys):
    import pytest
    from edgeexport.device.errors import TrainingError
    from edgeexport.train import cli
    real = cli.train_one_epoch

    def diverges_in_epoch_1(*args, **kwargs):
        if args[5] == 1:
            raise TrainingError("the loss diverged at epoch 1, between steps 1 and 2 (loss nan)")
        return real(*args, **kwargs)
    monkeypatch.setattr(cli, "train_one_epoch", diverges_in_epoch_1)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        cli.cli(TINY[2:] + ["--epochs", "3", "--output-dir", str(out)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert e.value.code == 1 and len(err) == 1, err
    assert "diverged at epoch 1" in err[0] and "{} holds epoch 0".format(out / "last.pth") in err[0]
    assert read_checkpoint(str(out / "last.pth"))["train_state"]["epoch"] == 0


def test_qat_fine_tunes_a_trained_model_and_continues(tmp_path):
    base, qat = tmp_path / "base", tmp_path / "qat"
    assert run_cli(TINY + ["--epochs", "1", "--output-dir", str(base)]).returncode == 0
    r = run_cli(TINY + ["--qat", "--resume", str(base / "best.pth"), "--qat-calib-batches", "1", "--epochs", "1",
                        "--output-dir", str(qat)])
    assert r.returncode == 0, r.stderr
    assert "QAT: input ranges of 88 convs calibrated on 1 batches" in r.stdout
    ckpt = read_checkpoint(str(qat / "last.pth"))
    amax = ckpt["qat"]["amax"]
    assert len(amax) == 88 and all(v > 0 for v in amax.values())
    # nothing added to the state dict: a QAT checkpoint loads as a plain SSDLite
    assert sorted(ckpt["model"]) == sorted(_weights(base / "best.pth"))
    load_model(str(qat / "best.pth"))
    # a QAT last.pth continues as any run does, with its ranges held
    r = run_cli(TINY + ["--qat", "--resume", str(qat / "last.pth"), "--epochs", "2", "--output-dir", str(qat)])
    assert r.returncode == 0, r.stderr
    assert "resumed from" in r.stdout and "calibrated" not in r.stdout
    assert read_checkpoint(str(qat / "last.pth"))["qat"]["amax"] == amax


def test_qat_needs_a_checkpoint_to_start_from(tmp_path):
    r = run_cli(TINY + ["--qat", "--epochs", "1", "--output-dir", str(tmp_path / "q")])
    assert r.returncode == 2 and "--resume BEST.pth" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "q").exists()


def test_qat_never_writes_over_the_model_it_fine_tunes(tmp_path):
    base = tmp_path / "base"
    assert run_cli(TINY + ["--epochs", "1", "--output-dir", str(base)]).returncode == 0
    before = (base / "best.pth").read_bytes()
    r = run_cli(TINY + ["--qat", "--resume", str(base / "best.pth"), "--epochs", "1", "--output-dir", str(base),
                        "--force"])
    assert r.returncode == 2 and "name another --output-dir" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert (base / "best.pth").read_bytes() == before


def test_running_out_of_gpu_memory_while_a_batch_is_prepared_is_one_line():
    """The batches are decoded and copied ahead of the step (train_input's thread): an out-of-memory there reaches
    the loop from its stream of batches, outside the step's guard, and must still be the one-line TrainingError."""
    import pytest
    from edgeexport.device.errors import TrainingError
    from edgeexport.train.loop import train_one_epoch
    model = torch.nn.Linear(1, 1)

    def batches():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        yield
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    with pytest.raises(TrainingError) as e:
        train_one_epoch(model, opt, sched, batches(), torch.device("cpu"), 0, show_progress=False, batched=True,
                        steps=3)
    msg = str(e.value)
    assert msg.startswith("out of GPU memory while preparing the next batch") and "-b/--batch-size" in msg
    assert "\n" not in msg
