"""``python -m coldbrew.text.onnxchild CONFIG_JSON DIRECTORY``: the child process that exports an
encoder to ONNX for :func:`coldbrew.text.onnx.exported` (PyTorch is imported here, never in the
process that serves). Its exit status says why an export failed (``UNSUPPORTED``,
``CANNOT_LOAD``), its last line of stderr the reason."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from coldbrew.text.factory import load_encoder
from coldbrew.text.onnx import CANNOT_LOAD, UNSUPPORTED, OnnxUnsupported, export
from coldbrew.text.sbert import SentenceTransformerEncoder


def main(argv: Sequence[str]) -> int:
    """Export the encoder ``argv[0]`` (its :meth:`~coldbrew.text.encoder.Encoder.config` as
    JSON) into the directory ``argv[1]``; 0 when done."""
    config, directory = argv
    base = load_encoder(json.loads(config))
    if not isinstance(base, SentenceTransformerEncoder):
        print(f"OnnxUnsupported: {base.name} is not a sentence-transformers model", file=sys.stderr)
        return UNSUPPORTED
    try:
        base.st_model  # noqa: B018 - loads it, or says why it cannot be loaded
    except ValueError as exc:
        print("CannotLoad: " + " ".join(str(exc).split()), file=sys.stderr)
        return CANNOT_LOAD
    try:
        export(base, Path(directory))
    except OnnxUnsupported as exc:
        print(f"OnnxUnsupported: {exc}", file=sys.stderr)
        return UNSUPPORTED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
