"""Frames/s of one trained model through several host pipelines, measured side by side in one run.

    python benchmarks/host_fps.py --model-path runs/demo/train/best.pth --json out.json          # CPU
    python benchmarks/host_fps.py --model-path best.pth --device cuda --batch-sizes 1 64        # GPU

Pipelines: torchvision's own eager model (its resize, normalisation and postprocessing, on full-size frames);
the deploy graph in PyTorch (fp32; on a GPU also fp16, fp16 + CUDA graphs, torch.compile); ONNX Runtime on the
exported graph (CPU). Prints a table with ratios to torchvision eager at batch 1 and writes JSON.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.stats import board_name, json_output, markdown_table, summarize, write_json  # noqa: E402


PIPELINES = ("torchvision_eager", "deploy_fp32", "deploy_fp16", "deploy_fp16_cudagraph", "deploy_compile",
             "onnxruntime")


def get_args_parser(add_help=True):
    from edgeexport.device.cli import (MAX_ITERATIONS, ArgumentParser, batch_size, image_side, int_range, iterations,
                                       output_file, worker_count)
    from edgeexport.device.meta import ARCHS
    from edgeexport.model.torch_device import torch_device
    p = ArgumentParser(description=__doc__.strip().splitlines()[0], add_help=add_help)
    p.add_argument("--model-path", help="a trained model.pth (default: an untrained, BN-calibrated model: "
                                        "not representative of postprocessing cost)")
    p.add_argument("--arch", default="ssdlite320_mobilenet_v3_large", choices=ARCHS)
    p.add_argument("--device", type=torch_device, default="cpu")
    p.add_argument("--batch-sizes", type=batch_size, nargs="+", default=[1])
    p.add_argument("--warmup", type=int_range(0, MAX_ITERATIONS), default=5)
    p.add_argument("--iters", type=iterations, default=30)
    p.add_argument("--frame-size", type=image_side, nargs=2, default=[480, 640], metavar=("H", "W"),
                   help="full-size frame fed to torchvision's own pipeline")
    p.add_argument("--pipelines", nargs="+", default=None, choices=PIPELINES,
                   help="subset of: torchvision_eager deploy_fp32 deploy_fp16 deploy_fp16_cudagraph deploy_compile "
                        "onnxruntime")
    p.add_argument("--threads", type=worker_count, default=0,
                   help="torch / onnxruntime intra-op threads (0: default)")
    p.add_argument("--json", type=output_file, help="write the results here")
    return p


def _frames(n, h, w):
    from edgeexport.data.synthetic import render_scene
    rng = np.random.default_rng(0)
    return [render_scene(rng, h, w, ["circle", "square", "triangle"])[0] for _ in range(n)]


def time_it(fn, warmup, iters, sync=lambda: None):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return times


def main(args):
    import torch
    outputs = json_output(args.json, reads=[args.model_path])
    from edgeexport.model.checkpoint import load_model
    from edgeexport.export.deploy import build_deploy_model
    from edgeexport.device.meta import BundleMeta, ModelMeta
    from edgeexport.device.preprocess import nvinfer_preprocess

    torch.backends.cudnn.allow_tf32 = False  # an fp32 row must be fp32
    torch.backends.cuda.matmul.allow_tf32 = False
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model_path:
        model, meta, _ = load_model(args.model_path)
        trained = True
    else:
        from edgeexport.data.photos import natural_images
        from edgeexport.model.ssdlite import build_ssdlite, calibrate_batchnorm
        meta = ModelMeta(args.arch, ["circle", "square", "triangle"])
        model = calibrate_batchnorm(build_ssdlite(meta), natural_images())
        trained = False
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    bmeta = BundleMeta(meta)
    h, w = meta.input_size
    model = model.eval().to(device)
    deploy = build_deploy_model(model.cpu(), meta).to(device).eval()
    model = model.to(device)
    wanted = args.pipelines or (["torchvision_eager", "deploy_fp32", "deploy_fp16", "deploy_fp16_cudagraph",
                                 "deploy_compile"] if cuda else ["torchvision_eager", "deploy_fp32", "onnxruntime"])
    fp16_graph = []

    def deploy_fp16():
        """The folded graph in fp16 on the device, built once (folding works on a CPU copy of the weights)."""
        if not fp16_graph:
            fp16_graph.append(build_deploy_model(model.cpu(), meta).half().to(device).eval())
            model.to(device)
        return fp16_graph[0]

    max_b = max(args.batch_sizes)
    frames = _frames(max_b, *args.frame_size)
    rows = []
    onnx_model = None
    for b in args.batch_sizes:
        tv_inputs = [torch.from_numpy(f).permute(2, 0, 1).float().div(255).to(device) for f in frames[:b]]
        x = np.concatenate([nvinfer_preprocess(f, w, h, bmeta.offsets) for f in frames[:b]])
        xt = torch.from_numpy(x).to(device)
        for name in wanted:
            fn = None
            with torch.no_grad():
                if name == "torchvision_eager":
                    def fn():
                        return model(tv_inputs)
                elif name == "deploy_fp32":
                    def fn():
                        return deploy(xt)
                elif name == "deploy_fp16" and cuda:
                    d16, x16 = deploy_fp16(), xt.half()

                    def fn():
                        return d16(x16)
                elif name == "deploy_fp16_cudagraph" and cuda:
                    d16 = deploy_fp16()
                    static_x = xt.half().clone()
                    s = torch.cuda.Stream()
                    s.wait_stream(torch.cuda.current_stream())
                    with torch.cuda.stream(s):
                        for _ in range(3):
                            d16(static_x)
                    torch.cuda.current_stream().wait_stream(s)
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph):
                        d16(static_x)

                    def fn():
                        graph.replay()
                elif name == "deploy_compile" and cuda:
                    compiled = torch.compile(deploy_fp16())
                    x16 = xt.half()
                    t = time.perf_counter()
                    compiled(x16)
                    sync()
                    compile_s = time.perf_counter() - t

                    def fn():
                        return compiled(x16)
                elif name == "onnxruntime" and not cuda:
                    if onnx_model is None:
                        onnx_model = _export_onnx(deploy.cpu(), meta, max(args.batch_sizes))
                        deploy.to(device)
                    import onnxruntime as ort
                    opts = ort.SessionOptions()
                    if args.threads:
                        opts.intra_op_num_threads = args.threads
                    sess = ort.InferenceSession(onnx_model, opts, providers=["CPUExecutionProvider"])

                    def fn():
                        return sess.run(None, {"input": x})
                if fn is None:
                    continue
                times = time_it(fn, args.warmup, args.iters, sync)
            row = dict(summarize(times, b), pipeline=name, device=str(device))
            if name == "deploy_compile":
                row["compile_s"] = compile_s
            rows.append(row)
            print("  {:<24} batch {:>3}: {:8.2f} ms median, {:9.1f} frames/s".format(name, b, row["median_ms"],
                                                                                    row["fps"]), flush=True)
    base = {r["batch_size"]: r["fps"] for r in rows if r["pipeline"] == "torchvision_eager"}
    for r in rows:
        r["vs_torchvision_eager"] = r["fps"] / base[r["batch_size"]] if r["batch_size"] in base else None
    print()
    print(markdown_table(rows, [("pipeline", "pipeline"), ("batch", "batch_size"), ("median ms", "median_ms"),
                                ("p99 ms", "p99_ms"), ("frames/s", "fps"),
                                ("x torchvision eager", lambda r: "-" if r["vs_torchvision_eager"] is None
                                 else "{:.2f}x".format(r["vs_torchvision_eager"]))]))
    payload = {"machine": board_name(), "device": str(device), "arch": meta.arch, "trained_model": trained,
               "model_path": args.model_path, "torch": str(torch.__version__), "threads": torch.get_num_threads(),
               "frame_size": args.frame_size, "results": rows}
    if cuda:
        payload["gpu"] = torch.cuda.get_device_name()
    write_json(outputs, args.json, payload)
    return payload


def _export_onnx(deploy, meta, batch):
    """The serialized graph: ONNX Runtime takes it as bytes, so no temporary file is left behind."""
    from edgeexport.export.onnx_graph import export_onnx_bytes
    h, w = meta.input_size
    proto = export_onnx_bytes(deploy, [batch, 3, h, w], deploy.output_names, 13, dynamic_batch=True)
    return proto.SerializeToString()


if __name__ == "__main__":
    from edgeexport.device.cli import run_cli
    run_cli(get_args_parser, main)
