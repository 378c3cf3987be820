"""What the GPU benches (gpu_eval.py, gpu_train.py) share: waiting for the device, naming the card.

Imported by name: a script run as ``python bench/NAME.py`` has this folder on its path.
"""

from __future__ import annotations


def sync(device: str) -> None:
    """Wait until ``device`` has finished its queued work (a CUDA device; nothing to wait for else),
    so a timer read next measures the work and not only its launch."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def card_name(device: str) -> str:
    """The card's name as torch gives it (what the MFU's peak is looked up by), or "cpu"."""
    if not device.startswith("cuda"):
        return "cpu"
    import torch

    return torch.cuda.get_device_name(0)
