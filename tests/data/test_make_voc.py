"""make_voc: the shapes on natural photographs as a VOC folder the VOC reader (and any VOC tool) takes."""
from edgeexport.data import VOCDetection

from ..conftest import run_cli


def test_writes_a_voc_folder_with_splits(tmp_path):
    root = str(tmp_path / "voc")
    r = run_cli(["-m", "edgeexport.data.make_voc", root, "--train", "6", "--val", "3", "--size", "200", "150"])
    assert r.returncode == 0, r.stderr
    train, val = VOCDetection(root, split="train"), VOCDetection(root, split="val")
    assert (len(train), len(val)) == (6, 3) and train.labels == ["circle", "square", "triangle"]
    img, target = val[0]
    assert img.shape == (150, 200, 3) and len(target["boxes"]) >= 1
    b = target["boxes"]
    assert (b[:, 0] >= 0).all() and (b[:, 2] <= 200).all() and (b[:, 3] <= 150).all()


def test_bad_input_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    r = run_cli(["-m", "edgeexport.data.make_voc", str(tmp_path / "file" / "voc")])
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
