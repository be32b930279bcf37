import pytest
import torch

from edgeexport.device.meta import ModelMeta
from edgeexport.model.ssdlite import build_ssdlite, count_anchors, head_num_classes


@pytest.mark.parametrize("arch", ["ssdlite320_mobilenet_v3_large", "ssdlite320_mobilenet_v3_small"])
def test_builders_any_classes_and_anchor_count(arch):
    meta = ModelMeta(arch, ["a", "b", "c", "d", "e"])
    model = build_ssdlite(meta)
    assert count_anchors(model) == 3234
    assert head_num_classes(model.state_dict()) == 5
    assert model.transform.image_mean == list(meta.image_mean)
    model.eval()
    with torch.no_grad():
        out = model([torch.rand(3, 200, 300)])
    assert set(out[0]) == {"boxes", "scores", "labels"}


def test_large_keys_match_torchvision_builder():
    """Our Large is torchvision's: same state_dict keys and shapes, so reference-script weights load."""
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large
    tv = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=4)
    ours = build_ssdlite(ModelMeta("ssdlite320_mobilenet_v3_large", ["a", "b", "c"]))
    assert {k: tuple(v.shape) for k, v in tv.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in ours.state_dict().items()}


def test_input_size_is_configurable():
    model = build_ssdlite(ModelMeta("ssdlite320_mobilenet_v3_small", ["a"], input_size=(256, 256)))
    assert count_anchors(model) == 6 * (16 * 16 + 8 * 8 + 4 * 4 + 2 * 2 + 1 + 1)


def test_pretrained_backbone_offline_is_one_clear_error(monkeypatch, tmp_path):
    from edgeexport.device.errors import InputFileError
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty hub cache: a download would be needed
    import urllib.request

    def no_network(*a, **k):
        raise OSError("network unreachable")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    meta = ModelMeta("ssdlite320_mobilenet_v3_small", ["a"], reduced_tail=False)
    with pytest.raises(InputFileError, match="could not fetch the ImageNet weights"):
        build_ssdlite(meta, pretrained_backbone=True)
