"""nvinfer's frame scaling (gstnvinfer.cpp get_converted_buffer) in NumPy: even crop, stretch, aspect kept."""
import numpy as np
import pytest

from edgeexport.device.postprocess import Detections, to_frame
from edgeexport.device.preprocess import SCALING_FILTERS, scale_frame


def _frame(w, h):
    rng = np.random.default_rng(w * 1000 + h)
    return rng.integers(0, 256, (h, w, 3)).astype(np.uint8)


def test_odd_frames_lose_their_last_column_and_row_and_boxes_map_back_with_even_sizes():
    frame = _frame(641, 481)
    small, scale = scale_frame(frame, 320, 240, 0)
    assert scale.ratio_x == 320 / 640.0 and scale.ratio_y == 240 / 480.0
    even, _ = scale_frame(np.ascontiguousarray(frame[:480, :640]), 320, 240, 0)
    assert np.array_equal(small, even)  # the odd column and row never reach the network
    box = to_frame(Detections([[0, 0, 320, 240]], [1], [0]), scale).boxes[0]
    assert box.tolist() == pytest.approx([0, 0, 640, 480])


@pytest.mark.parametrize("symmetric", [False, True])
def test_maintain_aspect_ratio_pads_with_zeros_and_boxes_come_back_in_frame_pixels(symmetric):
    frame = np.full((200, 400, 3), 200, np.uint8)  # 2:1 into 320x320: 320x160 of picture
    small, scale = scale_frame(frame, 320, 320, 1, maintain_aspect_ratio=True, symmetric_padding=symmetric)
    top = 80 if symmetric else 0
    assert (scale.offset_left, scale.offset_top) == (0, top)
    assert (small[top:top + 160] == 200).all() and small[:top].sum() == 0 and small[top + 160:].sum() == 0
    box = to_frame(Detections([[0, top, 320, top + 160]], [1], [0]), scale).boxes[0]
    assert box.tolist() == pytest.approx([0, 0, 400, 200])


def test_aspect_kept_size_is_truncated_to_whole_pixels():
    _, scale = scale_frame(_frame(300, 200), 320, 320, 1, maintain_aspect_ratio=True)
    assert scale.ratio_y * 200 == 213  # 320 * 200 / 300 = 213.33 -> 213 (a guint in nvinfer)


def test_every_scaling_filter_nvinfer_accepts_is_accepted_and_others_are_not():
    assert sorted(SCALING_FILTERS) == [0, 1, 2, 3, 4, 5, 6]
    for f in SCALING_FILTERS:
        assert scale_frame(_frame(64, 48), 32, 32, f)[0].shape == (32, 32, 3)
    with pytest.raises(ValueError, match="scaling-filter"):
        scale_frame(_frame(64, 48), 32, 32, 7)
