"""The batched SSD loss equals torchvision's SSD.compute_loss, loss and gradients, to 1e-5."""
import pytest
import torch

from edgeexport.train.ssd_loss import SSDTrainStep, default_boxes, match, pad_targets, ssd_loss

from ..conftest import make_model


def _targets(gen, sizes, h=320, w=320, k=3):
    out = []
    for n in sizes:
        xy = torch.rand(n, 2, generator=gen) * torch.tensor([w * 0.8, h * 0.8])
        wh = torch.rand(n, 2, generator=gen) * torch.tensor([w * 0.5, h * 0.5]) + 4
        boxes = torch.cat([xy, torch.minimum(xy + wh, torch.tensor([float(w), float(h)]))], 1)
        out.append({"boxes": boxes, "labels": torch.randint(1, k + 1, (n,), generator=gen)})
    return out


def _torchvision_losses(model, images, targets):
    """SSD.forward's training branch, head outputs exposed so that their gradients can be compared."""
    il, targets = model.transform(images, targets)
    features = list(model.backbone(il.tensors).values())
    head = model.head(features)
    head = {k: v.detach().requires_grad_(True) for k, v in head.items()}
    anchors = model.anchor_generator(il, features)
    matched = []
    for a, t in zip(anchors, targets):
        if t["boxes"].numel() == 0:
            matched.append(torch.full((a.size(0),), -1, dtype=torch.int64))
        else:
            from torchvision.ops import box_iou
            matched.append(model.proposal_matcher(box_iou(t["boxes"], a)))
    return model.compute_loss(targets, head, anchors, matched), head, anchors[0], targets, matched


@pytest.mark.parametrize("sizes", [[3, 0, 1, 7], [0, 0], [40, 2], [1]])
def test_loss_and_gradients_equal_torchvisions(sizes):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(len(sizes) * 100 + sum(sizes))
    model, _ = make_model()  # eval: BatchNorm on running statistics, so that a batch of one is fine too
    images = [torch.rand(3, 320, 320, generator=gen) for _ in sizes]
    targets = _targets(gen, sizes)
    ref, head, anchors, scaled, matched = _torchvision_losses(model, images, targets)
    ref_total = ref["bbox_regression"] + ref["classification"]
    ref_total.backward()
    ref_grads = {k: v.grad.clone() for k, v in head.items()}
    ours_head = {k: v.detach().clone().requires_grad_(True) for k, v in head.items()}
    boxes, labels, valid = pad_targets(scaled)
    ours = ssd_loss(ours_head["cls_logits"], ours_head["bbox_regression"], anchors, boxes, labels, valid,
                    model.proposal_matcher.high_threshold, model.neg_to_pos_ratio)
    for k in ("bbox_regression", "classification"):
        assert float(ours[k].detach()) == pytest.approx(float(ref[k].detach()), rel=1e-5, abs=1e-5), k
    (ours["bbox_regression"] + ours["classification"]).backward()
    for k in ref_grads:
        torch.testing.assert_close(ours_head[k].grad, ref_grads[k], rtol=1e-5, atol=1e-5)
    # the matching itself, anchor by anchor
    ours_matches = match(anchors, boxes, valid, model.proposal_matcher.high_threshold)
    for i, m in enumerate(matched):
        assert torch.equal(ours_matches[i], m), i


def test_shared_best_anchor_goes_to_the_later_box():
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    boxes = torch.tensor([[[0.0, 0.0, 10.0, 9.0], [0.0, 0.0, 10.0, 9.5]]])
    m = match(anchors, boxes, torch.ones(1, 2, dtype=torch.bool))
    assert m.tolist() == [[1, -1]]


def test_the_train_step_equals_the_models_own_training_forward():
    """SSDTrainStep (normalise, backbone, head, cached anchors, batched loss) on a uint8 batch = model(images,
    targets) on the same images as floats."""
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(5)
    model, _ = make_model()
    model.train()
    u8 = (torch.rand(3, 3, 320, 320, generator=gen) * 255).round().to(torch.uint8)
    targets = _targets(gen, [2, 0, 5])
    with torch.no_grad():
        torch.manual_seed(2)
        ref = model([im.float() / 255.0 for im in u8], [dict(t) for t in targets])
        torch.manual_seed(2)
        ours = SSDTrainStep(model)(u8, *pad_targets(targets))
    for k in ref:
        assert float(ours[k]) == pytest.approx(float(ref[k]), rel=1e-4, abs=1e-5), k


def _anchor_args(model):
    g = model.anchor_generator
    return [p.tolist() for p in g._wh_pairs], g.steps, g.clip


@pytest.mark.parametrize("arch", ["ssdlite320_mobilenet_v3_small", "ssdlite320_mobilenet_v3_large"])
@pytest.mark.parametrize("size", [(320, 320), (300, 416)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_default_boxes_equal_torchvisions_anchor_generator(arch, size, dtype):
    """Bit for bit, the features' dtype included (under bf16 autocast torchvision rounds the centres to bf16)."""
    from torchvision.models.detection.image_list import ImageList
    model, _ = make_model(arch, calibrate=False)
    grids = [(-(-size[0] // s), -(-size[1] // s)) for s in (16, 32, 64, 128, 256, 512)]  # the backbone's strides
    features = [torch.zeros(1, 1, h, w, dtype=dtype) for h, w in grids]
    want = model.anchor_generator(ImageList(torch.zeros(1, 3, *size), [size]), features)[0]
    got = default_boxes(*_anchor_args(model), grids, size, dtype, torch.device("cpu"))
    assert got.dtype == want.dtype and torch.equal(got, want)


def test_default_boxes_make_every_tensor_on_the_asked_device():
    """Under reduce-overhead (CUDA graphs) inductor moves a graph's CPU constructors to the GPU and could not compile
    torchvision's anchors, made on the CPU and moved (the H200, torch 2.11). Ours must make nothing on the CPU:
    every op's output is recorded, asked for the meta device; torchvision's, asked the same, makes CPU tensors."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torchvision.models.detection.image_list import ImageList

    class Devices(TorchDispatchMode):
        def __init__(self):
            super(Devices, self).__init__()
            self.seen = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            self.seen += [t.device.type for t in (out if isinstance(out, (list, tuple)) else [out])
                          if isinstance(t, torch.Tensor)]
            return out
    model, _ = make_model(calibrate=False)
    grids = [(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    with Devices() as ours:
        default_boxes(*_anchor_args(model), grids, (320, 320), torch.bfloat16, torch.device("meta"))
    with Devices() as theirs:
        model.anchor_generator(ImageList(torch.zeros(1, 3, 320, 320, device="meta"), [(320, 320)]),
                               [torch.zeros(1, 1, h, w, device="meta", dtype=torch.bfloat16) for h, w in grids])
    assert ours.seen and set(ours.seen) == {"meta"}
    assert "cpu" in theirs.seen


@pytest.mark.slow
def test_compiling_the_step_keeps_losses_and_gradients_over_changing_shapes():
    """--compile wraps SSDTrainStep in torch.compile. Its graph capture (TorchDynamo, AOTAutograd: the aot_eager
    backend, no generated kernels) must give the eager step's losses and gradients, also when the next batch pads
    to another number of boxes and has another size (guards fail, the step is traced again or made dynamic), and
    the anchor cache the forward fills must not go stale. Inductor's own kernels: train_speed.py --compile
    reports their agreement on a GPU."""
    import copy
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(7)
    eager_model, _ = make_model()
    eager_model.train()
    compiled_model = copy.deepcopy(eager_model)
    eager, compiled = SSDTrainStep(eager_model), torch.compile(SSDTrainStep(compiled_model), backend="aot_eager")
    for sizes in ([3, 0], [6, 1, 2]):
        u8 = (torch.rand(len(sizes), 3, 320, 320, generator=gen) * 255).round().to(torch.uint8)
        batch = pad_targets(_targets(gen, sizes), multiple=1)  # 3 then 6 boxes: another shape, as 8 then 16 would
        for model in (eager_model, compiled_model):
            model.zero_grad(set_to_none=True)
        want, got = eager(u8, *batch), compiled(u8, *batch)
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=1e-6, atol=1e-6)
        sum(want.values()).backward()
        sum(got.values()).backward()
        for (name, p), q in zip(eager_model.named_parameters(), compiled_model.parameters()):
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_a_compiled_step_compiles_once_for_batches_of_one_shape():
    """The anchors the forward caches must not be read or written by the compiled graph: dynamo guards on a
    cache's keys, and filling it during the first call made the second compile the whole step again (the H200
    with TORCH_LOGS=recompiles). Counted with a backend that only records each graph (dynamo's tracing, no AOT)."""
    import torch._dynamo
    torch._dynamo.reset()
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward
    model, _ = make_model()
    step = torch.compile(SSDTrainStep(model.train()), backend=backend)
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):
        u8 = (torch.rand(2, 3, 320, 320, generator=gen) * 255).round().to(torch.uint8)
        step(u8, *pad_targets(_targets(gen, [2, 1])))
    torch._dynamo.reset()
    assert len(graphs) == 1


def test_box_padding_gives_a_compiled_loss_one_shape_for_batches_of_different_box_counts():
    """dynamo compiles anew for each new input shape; batches with 1..7 boxes share one padded shape."""
    import torch._dynamo

    def compiled_count(multiple):
        torch._dynamo.reset()
        compiles = []

        def backend(gm, example_inputs):
            compiles.append(1)
            return gm.forward
        loss = torch.compile(ssd_loss, backend=backend)
        gen = torch.Generator().manual_seed(0)
        anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 20.0, 20.0], [0.0, 10.0, 15.0, 30.0]])
        for n in range(1, 8):
            targets = [{"boxes": torch.tensor([[1.0, 1.0, 9.0, 9.0]] * n), "labels": torch.ones(n, dtype=torch.int64)},
                       {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64)}]
            boxes, labels, valid = pad_targets(targets, multiple=multiple)
            loss(torch.randn(2, 3, 4, generator=gen), torch.randn(2, 3, 4, generator=gen), anchors, boxes, labels,
                 valid)
        torch._dynamo.reset()
        return len(compiles)
    assert compiled_count(8) == 1
    assert compiled_count(1) > 1  # the shape per box count: what the padding is for
