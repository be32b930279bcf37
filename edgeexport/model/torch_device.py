"""``--device`` as an argparse type for every host command and benchmark script: a device torch knows and this
machine has, or one line naming what it has. Host-side (torch)."""
import argparse


def available_devices():
    import torch
    names = ["cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + ["cuda:{}".format(i) for i in range(torch.cuda.device_count())]
    return names


def torch_device(text):
    """'cpu', 'cuda', 'cuda:N' (N below the number of GPUs here), as a string; anything else is refused with what
    this machine has."""
    import torch
    try:
        device = torch.device(text)
    except Exception:  # by design: whatever torch cannot parse is not a device
        raise argparse.ArgumentTypeError("{!r} is not a torch device; available here: {}".format(
            text, ", ".join(available_devices())))
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index is not None and device.index >= count):
            raise argparse.ArgumentTypeError("{} is not on this machine; available here: {}".format(
                text, ", ".join(available_devices())))
    elif device.type != "cpu":
        raise argparse.ArgumentTypeError("{} is not a device this project runs on; available here: {}".format(
            text, ", ".join(available_devices())))
    return text


def default_device():
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"
