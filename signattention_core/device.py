"""Choice of the torch device for training, decoding and extraction."""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cuda", "cuda:N", "mps", "cpu")


def choose_device(flag: str | torch.device | None = None) -> torch.device:
    """Return the device that ``flag`` names, checking that it is available.

    ``None`` or ``"auto"`` picks CUDA when available, then Apple MPS, then the CPU.
    ``"cuda"``, ``"cuda:N"``, ``"mps"`` and ``"cpu"`` select that device.

    Raises:
        ValueError: for an unknown flag or a device this machine does not have.
    """
    if isinstance(flag, torch.device):
        flag = str(flag)
    name = "auto" if flag is None else flag.strip().lower()

    if name == "auto":
        if torch.cuda.is_available():
            device = torch.device("cuda")
        elif _mps_available():
            device = torch.device("mps")
        else:
            device = torch.device("cpu")
        logger.info("using device %s (chosen automatically)", device)
        return device

    if name == "cpu":
        return torch.device("cpu")

    if name == "mps":
        if not _mps_available():
            raise ValueError(
                "device 'mps' is not available: this PyTorch build or machine has no Apple MPS "
                "backend; use --device auto or cpu"
            )
        return torch.device("mps")

    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {flag!r} is not available: PyTorch sees no CUDA GPU "
                f"(CUDA build: {torch.version.cuda or 'none'}); use --device auto or cpu"
            )
        if name == "cuda":
            return torch.device("cuda")
        index_text = name.removeprefix("cuda:")
        if not index_text.isdigit():
            raise ValueError(f"invalid device {flag!r}: the GPU index must be a number, as in cuda:0")
        index = int(index_text)
        count = torch.cuda.device_count()
        if index >= count:
            raise ValueError(
                f"device {flag!r} is not available: this machine has {count} CUDA GPU(s), "
                f"indices 0 to {count - 1}"
            )
        return torch.device("cuda", index)

    raise ValueError(f"invalid device {flag!r}; accepted: {', '.join(DEVICE_CHOICES)}")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()
