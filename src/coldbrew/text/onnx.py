"""Run a sentence-transformers encoder's transformer through onnxruntime.

The same weights and the same vectors (checked at start-up against PyTorch), about twice as fast
on CPU for the short texts a service encodes per request: one MiniLM query is ~15 ms in PyTorch
eager mode and ~7 ms in onnxruntime on one core of the reference machine. The model is exported
when the encoder is first used (about a second for MiniLM) to a temporary file that is removed
once onnxruntime has loaded it.

Only the common sentence-transformers layout is supported — a transformer, then mean, CLS or max
pooling, then optionally normalisation. Vectors are always unit length, as the PyTorch encoder's
are. :func:`onnx_or_torch` falls back to PyTorch for anything
else, and when onnxruntime is not installed (``pip install coldbrew[serve]`` brings it).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from coldbrew.text.encoder import Encoder, TextKind, l2_normalize
from coldbrew.text.sbert import SentenceTransformerEncoder

log = logging.getLogger(__name__)

POOLING_MODES = ("mean", "cls", "max")
# Cosine that every probe text must reach against the PyTorch vectors for the export to be used.
MIN_AGREEMENT = 0.9999
_PROBES = (
    "a light jacket for a spring outing",
    "一件适合春天出游的轻便夹克",
    "The quick brown fox jumps over the lazy dog near the riverbank at dawn.",
)


class OnnxUnsupported(ValueError):
    """The model cannot run through onnxruntime here (layout, missing package, failed check)."""


class OnnxEncoder:
    """A :class:`SentenceTransformerEncoder` whose forward pass runs in onnxruntime.

    ``name`` and ``config()`` are the wrapped encoder's: the vectors are the same model's, so
    vectors stored by one are reused by the other. ``threads`` is onnxruntime's intra-op thread
    count (default: what PyTorch uses).
    """

    def __init__(self, base: SentenceTransformerEncoder, *, threads: int | None = None) -> None:
        self.base = base
        self.threads = threads
        self._session: Any = None
        self._inputs: list[str] = []
        self._pooling = "mean"

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def dim(self) -> int:
        return self.base.dim

    def config(self) -> dict[str, Any]:
        return self.base.config()

    def load(self) -> OnnxEncoder:
        """Export and check now rather than on the first call (raises :class:`OnnxUnsupported`)."""
        if self._session is None:
            self._build()
        return self

    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: TextKind = "passage",
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        self.load()
        inputs = self.base.prefixed(texts, kind)
        out = np.zeros((len(inputs), self.dim), dtype=np.float32)
        # Longest first, as sentence-transformers does, so each batch pads little.
        order = np.argsort([-len(t) for t in inputs], kind="stable")
        starts = range(0, len(inputs), batch_size)
        for start in tqdm(starts, desc="encode (onnx)", disable=not show_progress):
            rows = order[start : start + batch_size]
            out[rows] = self._forward([inputs[i] for i in rows])
        return l2_normalize(out)

    # ---- internals ---------------------------------------------------------------------------
    def _forward(self, texts: list[str]) -> np.ndarray:
        features = self.base.st_model.preprocess(texts)
        feed = {name: features[name].numpy().astype(np.int64) for name in self._inputs}
        (tokens,) = self._session.run(None, feed)
        mask = feed["attention_mask"]
        return _pool(tokens, mask, self._pooling)

    def _build(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            message = "onnxruntime is not installed: pip install coldbrew[serve]"
            raise OnnxUnsupported(message) from exc
        import torch

        st = self.base.st_model
        self._pooling = _layout(st)
        features = st.preprocess(list(_PROBES))
        transformer = st[0].auto_model
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in features]
        self._inputs = names
        model = _token_embeddings(transformer, names)
        axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "token_embeddings"]}
        with (
            tempfile.TemporaryDirectory(prefix="coldbrew-onnx-") as directory,
            torch.inference_mode(),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")  # tracer warnings about Python control flow
            path = f"{directory}/model.onnx"
            try:
                torch.onnx.export(
                    model,
                    tuple(features[n] for n in names),
                    path,
                    input_names=names,
                    output_names=["token_embeddings"],
                    dynamic_axes=axes,
                    opset_version=17,
                    dynamo=False,
                )
            except Exception as exc:  # any exporter failure means "use PyTorch"
                raise OnnxUnsupported(f"export of {self.name} failed: {exc}") from exc
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads or torch.get_num_threads()
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # idle workers sleep instead of spinning: in a service they share the cores with
            # the event loop (2 threads, one sentence: no slower, ~20% less CPU)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._check()

    def _check(self) -> None:
        """The exported model must give PyTorch's vectors (within float error) on the probes.

        Both sides are unit length (each encoder normalises), so the dot product is the cosine.
        """
        texts = list(_PROBES)
        mine = self.encode(texts, kind="passage")
        theirs = self.base.encode(texts, kind="passage")
        agreement = float(np.min(np.sum(mine * theirs, axis=1)))
        if agreement < MIN_AGREEMENT:
            self._session = None
            raise OnnxUnsupported(
                f"onnxruntime vectors of {self.name} differ from PyTorch's "
                f"(cosine {agreement:.5f} < {MIN_AGREEMENT})"
            )


def _layout(st: Any) -> str:
    """The pooling mode of a transformer → pooling → [normalize] model, else raise."""
    kinds = [type(module).__name__ for module in st]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise OnnxUnsupported(f"unsupported module layout {kinds}")
    mode = str(st[1].get_config_dict().get("pooling_mode", ""))
    if mode not in POOLING_MODES:
        raise OnnxUnsupported(f"unsupported pooling mode {mode!r}; supported: {POOLING_MODES}")
    return mode


def _pool(tokens: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    weights = mask[..., None].astype(np.float32)
    if mode == "cls":
        pooled = tokens[:, 0]
    elif mode == "max":
        pooled = np.where(weights > 0, tokens, -1e9).max(axis=1)
    else:
        pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return np.asarray(pooled, dtype=np.float32)


def _token_embeddings(transformer: Any, names: list[str]) -> Any:
    """A module mapping positional id/mask tensors to the last hidden state (for the export)."""
    import torch

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *tensors: Any) -> Any:
            return self.transformer(**dict(zip(names, tensors, strict=True))).last_hidden_state

    return TokenEmbeddings().eval()


def onnx_or_torch(encoder: Encoder, runtime: str = "auto") -> Encoder:
    """``encoder`` on the asked runtime: ``torch`` as is; ``onnx`` or raise; ``auto`` tries onnx.

    Only sentence-transformers encoders have an onnx form; others are returned unchanged.
    """
    if runtime not in ("auto", "onnx", "torch"):
        raise ValueError(f"unknown runtime {runtime!r}; expected auto, onnx or torch")
    if runtime == "torch" or not isinstance(encoder, SentenceTransformerEncoder):
        if runtime == "onnx" and not isinstance(encoder, SentenceTransformerEncoder):
            raise OnnxUnsupported(f"{encoder.name} has no onnx runtime")
        return encoder
    try:
        return OnnxEncoder(encoder).load()
    except OnnxUnsupported as exc:
        if runtime == "onnx":
            raise
        log.warning("encoding with PyTorch: %s", exc)
        return encoder
