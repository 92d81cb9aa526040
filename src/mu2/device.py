"""The one device resolver: the words every command's ``--device`` / ``device:`` accepts.

``auto`` is the GPU when there is one, else the CPU; ``cpu``, ``cuda`` and ``cuda:N`` are
torch's own. An unknown word or a GPU that is not there is one clear error.
"""

from __future__ import annotations

import torch

from mu2.errors import Mu2Error

AUTO = "auto"


def resolve_device(device: str | torch.device | None = AUTO) -> torch.device:
    """``auto`` / None -> cuda if available else cpu; anything else as torch reads it."""
    if device is None or device == AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise Mu2Error(
            f"unknown device '{device}'", fix="use auto, cpu or cuda (cuda:N)"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise Mu2Error(
            f"device '{device}' asked for, but no CUDA GPU is available",
            fix="use --device cpu (or auto)",
        )
    return dev


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work (timings); nothing on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
