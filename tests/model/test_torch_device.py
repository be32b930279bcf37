"""--device for every host command and benchmark script: a device torch knows and this machine has."""
import argparse

import pytest
import torch

from edgeexport.model.torch_device import torch_device


def test_torch_device_flags_name_what_this_machine_has():
    assert torch_device("cpu") == "cpu"
    for text in ("bogus", "cuda:99", "meta", "mps"):
        with pytest.raises(argparse.ArgumentTypeError, match="available here: cpu"):
            torch_device(text)
    if not torch.cuda.is_available():
        with pytest.raises(argparse.ArgumentTypeError, match="not on this machine"):
            torch_device("cuda")
