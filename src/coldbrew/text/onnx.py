"""Run a sentence-transformers encoder's transformer through onnxruntime, without PyTorch.

The same weights and the same vectors (checked against PyTorch's on probe texts), about twice as
fast on CPU for the short texts a service encodes per request: one MiniLM query is ~15 ms in
PyTorch eager mode and ~7 ms in onnxruntime on one core of the reference machine.

The transformer is exported once per model to ``$COLDBREW_CACHE/onnx`` (else
``.coldbrew/cache/onnx``) by a child process: the ONNX graph, the model's own tokenizer (the
``tokenizers`` form sentence-transformers runs, checked to give the same token ids) and PyTorch's
vectors of the probe texts. The process that encodes then loads only onnxruntime and tokenizers —
PyTorch and sentence-transformers (~700 MB resident together) are never imported there — and
checks the loaded model against the stored probe vectors at every start. A model already loaded
in this process (a fine-tuned one in memory) is exported in-process instead, through a temporary
directory.

Only the common sentence-transformers layout is supported — a transformer, then mean, CLS or max
pooling, then optionally normalisation. Vectors are always unit length, as the PyTorch encoder's
are. :func:`float_runtime` (and :func:`coldbrew.text.runtime.onnx_or_torch`, which picks the
runtime by name) falls back to PyTorch for anything else, and when onnxruntime is not installed
(``pip install coldbrew[serve]`` brings it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from coldbrew.cpus import usable_cpus
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
# Texts whose token ids must be sentence-transformers' own (spacing, accents, empty, truncation).
_TOKEN_PROBES = (
    *_PROBES,
    "",
    "  spaced \t out\n ",
    "Ünïcödé café naïve",
    "a long description of a mechanical keyboard with hot-swappable switches " * 40,
)
EXPORT_FORMAT = 1  # bump when what an export directory holds changes
EXPORT_TIMEOUT_S = 900
UNSUPPORTED = 2  # the export child's exit status for a model onnxruntime cannot run
CANNOT_LOAD = 3  # ...for a model that does not load at all (PyTorch could not run it either)
FILES = ("model.onnx", "tokenizer.json", "meta.json")
# the model's inputs and the fields of a ``tokenizers`` encoding that hold them
_FIELDS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}


class OnnxUnsupported(ValueError):
    """The model cannot run through onnxruntime here (layout, missing package, failed check)."""


def cache_root() -> Path:
    """Where exported models are kept: ``$COLDBREW_CACHE/onnx``, else ``.coldbrew/cache/onnx``."""
    return Path(os.environ.get("COLDBREW_CACHE", ".coldbrew/cache")) / "onnx"


class OnnxEncoder:
    """A :class:`SentenceTransformerEncoder` whose forward pass runs in onnxruntime.

    ``name`` and ``config()`` are the wrapped encoder's: the vectors are the same model's, so
    vectors stored by one are reused by the other. ``threads`` is onnxruntime's intra-op thread
    count (default: the CPUs this process may run on); ``cache_dir`` where exports are kept
    (default :func:`cache_root`).
    """

    floor = MIN_AGREEMENT
    """Cosine that every probe text must reach against PyTorch's vectors at load."""

    def __init__(
        self,
        base: SentenceTransformerEncoder,
        *,
        threads: int | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.base = base
        self.threads = threads
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._session: Any = None
        self._tokenizer: Any = None
        self._meta: dict[str, Any] = {}
        self._pad_id = 0

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def dim(self) -> int:
        return int(self._meta["dim"]) if self._meta else self.base.dim

    def config(self) -> dict[str, Any]:
        return self.base.config()

    def load(self) -> OnnxEncoder:
        """Export (or find the export) and check now rather than on the first call (raises
        :class:`OnnxUnsupported`, or :class:`ValueError` for a model that does not load)."""
        if self._session is None:
            try:
                import onnxruntime  # noqa: F401
                import tokenizers  # noqa: F401
            except ImportError as exc:
                message = "onnxruntime is not installed: pip install coldbrew[serve]"
                raise OnnxUnsupported(message) from exc
            if self.base._st is not None:  # in memory already (e.g. just fine-tuned)
                with tempfile.TemporaryDirectory(prefix="coldbrew-onnx-") as directory:
                    export(self.base, Path(directory))
                    self._open(Path(directory))
            else:
                self._open(exported(self.base, self.cache_dir or cache_root()))
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
        # Tokenized once, unpadded; batched by token count, longest first, so each batch pads
        # to a length its texts nearly share (sorting by characters padded online-retail's
        # titles to 1.4x their tokens, by tokens 1.05x) and the vectors put back in order.
        encodings = self._tokenizer.encode_batch(self.base.prefixed(texts, kind))
        lengths = np.array([len(e.ids) for e in encodings], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")
        out = np.zeros((len(encodings), self.dim), dtype=np.float32)
        starts = range(0, len(encodings), batch_size)
        for start in tqdm(starts, desc="encode (onnx)", disable=not show_progress):
            rows = order[start : start + batch_size]
            out[rows] = self._forward([encodings[i] for i in rows])
        return l2_normalize(out)

    # ---- internals ---------------------------------------------------------------------------
    def _forward(self, encodings: list[Any]) -> np.ndarray:
        feed = padded_features(encodings, self._meta["inputs"], self._pad_id)
        (tokens,) = self._session.run(None, feed)
        return _pool(tokens, feed["attention_mask"], self._meta["pooling"])

    def _model_file(self, directory: Path) -> Path:
        """The ONNX file of an export directory that this runtime runs."""
        return directory / "model.onnx"

    def _unreadable(self, file: Path, exc: Exception) -> OnnxUnsupported:
        """Why ``file`` cannot be run (and what was done about it)."""
        return OnnxUnsupported(f"{file} does not load: {exc}")

    def _open(self, directory: Path) -> None:
        """Load an export directory into onnxruntime and check it against its probe vectors."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        meta = json.loads((directory / "meta.json").read_text())
        file = self._model_file(directory)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads or usable_cpus()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle workers sleep instead of spinning: in a service they share the cores with the
        # event loop (2 threads, one sentence: no slower, ~20% less CPU)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own errors (a truncated or corrupted file)
            raise self._unreadable(file, exc) from exc
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._pad_id = int((tokenizer.padding or {}).get("pad_id", 0))
        tokenizer.no_padding()  # each batch is padded to its own longest (padded_features)
        self._tokenizer = tokenizer
        self._session, self._meta = session, meta
        mine = self.encode(list(_PROBES), kind="passage")
        agreement = float(np.min(np.sum(mine * np.asarray(meta["probes"]), axis=1)))
        if agreement < self.floor:
            self._session, self._tokenizer, self._meta = None, None, {}
            raise OnnxUnsupported(
                f"onnxruntime vectors of {self.name} differ from PyTorch's "
                f"(cosine {agreement:.5f} < {self.floor})"
            )


def token_features(tokenizer: Any, texts: Sequence[str], names: Sequence[str]) -> dict[str, Any]:
    """The model's input arrays for ``texts``: token ids, attention mask (and token types)."""
    encodings = tokenizer.encode_batch(list(texts))
    return {
        name: np.array([getattr(e, _FIELDS[name]) for e in encodings], dtype=np.int64)
        for name in names
    }


def padded_features(encodings: Sequence[Any], names: Sequence[str], pad_id: int) -> dict[str, Any]:
    """The model's input arrays for unpadded ``tokenizers`` encodings, each padded with
    ``pad_id`` (mask 0, token type 0) to the longest of them: what a padding tokenizer gives
    for the same texts."""
    width = max((len(e.ids) for e in encodings), default=0)
    arrays = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in names}
    if "input_ids" in arrays:
        arrays["input_ids"].fill(pad_id)
    for row, encoding in enumerate(encodings):
        for name in names:
            values = getattr(encoding, _FIELDS[name])
            arrays[name][row, : len(values)] = values
    return arrays


def exported(base: SentenceTransformerEncoder, root: Path) -> Path:
    """The export directory of ``base`` under ``root``, made by a child process if missing.

    Keyed by the encoder's config, its model files (path, size, time) and the export format, so
    a changed model is exported again. The child writes into a temporary sibling, renamed into
    place when complete: a killed export leaves nothing half-written to be reused. A model the
    child found unsupported (its layout, its tokenizer, its vectors) is remembered beside it
    (``<key>.unsupported``, the reason), so later starts fall back at once instead of trying
    again; other failures are tried again at the next start. A model that does not load at all
    (a misspelled name, a hub model without network) raises :class:`ValueError` with the
    loader's reason, not :class:`OnnxUnsupported`: PyTorch could not run it either.
    """
    directory = root / _export_key(base)
    if all((directory / f).is_file() for f in FILES):
        return directory
    refused = directory.with_name(directory.name + ".unsupported")
    if refused.is_file():
        raise OnnxUnsupported(f"{refused.read_text().strip()} (remembered in {refused})")
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=root))
    try:
        log.info("exporting %s to ONNX (once; kept in %s)", base.name, directory)
        child = "coldbrew.text.onnxchild"
        command = [sys.executable, "-m", child, json.dumps(base.config()), str(work)]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise OnnxUnsupported(f"export of {base.name} took over {EXPORT_TIMEOUT_S} s") from exc
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            reason = lines[-1] if lines else f"exit status {done.returncode}"
            if done.returncode == CANNOT_LOAD and reason.startswith("CannotLoad: "):
                # not an onnx matter: falling back to PyTorch would only fail the same way,
                # after asking the hub again (a minute without network)
                raise ValueError(reason.removeprefix("CannotLoad: "))
            if done.returncode == UNSUPPORTED and reason.startswith("OnnxUnsupported: "):
                refused.write_text(reason.removeprefix("OnnxUnsupported: ") + "\n")
            raise OnnxUnsupported(reason.removeprefix("OnnxUnsupported: "))
        try:
            work.rename(directory)
        except OSError:  # another process finished the same export first: use theirs
            if not (directory / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return directory


def _export_key(base: SentenceTransformerEncoder) -> str:
    path = Path(base._resolve_path())
    stats = [(f, f.stat()) for f in sorted(path.rglob("*")) if f.is_file()] if path.is_dir() else []
    files = [(str(f.relative_to(path)), s.st_size, s.st_mtime_ns) for f, s in stats]
    blob = json.dumps([EXPORT_FORMAT, base.config(), str(path), files], sort_keys=True)
    safe = "".join(c if c.isalnum() else "-" for c in Path(base.model).name)[-40:]
    return f"{safe}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def export(base: SentenceTransformerEncoder, directory: Path) -> None:
    """Write ``base``'s transformer as ONNX, its tokenizer and its PyTorch probe vectors into
    ``directory`` (raises :class:`OnnxUnsupported` for another layout, other token ids or a
    failed export)."""
    import torch

    st = base.st_model
    pooling = _layout(st)
    tokenizer = _fast_tokenizer(st)
    features = st.preprocess(list(_PROBES))
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in features]
    _check_tokens(st, tokenizer, names)
    model = _token_embeddings(st[0].auto_model, names)
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "token_embeddings"]}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow
        try:
            torch.onnx.export(
                model,
                tuple(features[n] for n in names),
                str(directory / "model.onnx"),
                input_names=names,
                output_names=["token_embeddings"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        except Exception as exc:  # any exporter failure means "use PyTorch"
            raise OnnxUnsupported(f"export of {base.name} failed: {exc}") from exc
    tokenizer.save(str(directory / "tokenizer.json"))
    meta = {
        "format": EXPORT_FORMAT,
        "encoder": base.config(),
        "dim": base.dim,
        "pooling": pooling,
        "inputs": names,
        "probes": base.encode(list(_PROBES), kind="passage").tolist(),
    }
    (directory / "meta.json").write_text(json.dumps(meta))


def _fast_tokenizer(st: Any) -> Any:
    """The ``tokenizers`` object behind the model's tokenizer, set to pad to the longest text
    and truncate at the model's ``max_seq_length`` (what sentence-transformers asks of it)."""
    from tokenizers import Tokenizer

    hf = st.tokenizer
    backend = getattr(hf, "backend_tokenizer", None) or getattr(hf, "_tokenizer", None)
    if backend is None:
        raise OnnxUnsupported(f"{type(hf).__name__} has no fast (tokenizers) form")
    tokenizer = Tokenizer.from_str(backend.to_str())
    tokenizer.enable_truncation(max_length=int(st.max_seq_length))
    tokenizer.enable_padding(pad_id=int(hf.pad_token_id or 0), pad_token=str(hf.pad_token))
    return tokenizer


def _check_tokens(st: Any, tokenizer: Any, names: list[str]) -> None:
    """The tokenizer must give sentence-transformers' own ids on the token probes."""
    theirs = st.preprocess(list(_TOKEN_PROBES))
    mine = token_features(tokenizer, _TOKEN_PROBES, names)
    for name in names:
        if not np.array_equal(mine[name], theirs[name].numpy()):
            raise OnnxUnsupported(
                f"the tokenizers form of {type(st.tokenizer).__name__} "
                f"gives other {name} than sentence-transformers"
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


def float_runtime(
    encoder: Encoder, runtime: str = "auto", *, threads: int | None = None
) -> Encoder:
    """``encoder`` on a float runtime: ``torch`` as is; ``onnx`` or raise; ``auto`` tries onnx
    and falls back to PyTorch, saying why (``threads``: onnxruntime's, as
    :class:`OnnxEncoder` takes them). (``onnx-int8`` and the check of the runtime's name are
    :func:`coldbrew.text.runtime.onnx_or_torch`'s.)

    Only sentence-transformers encoders have an onnx form; others are returned unchanged.
    """
    if runtime == "torch" or not isinstance(encoder, SentenceTransformerEncoder):
        if runtime == "onnx" and not isinstance(encoder, SentenceTransformerEncoder):
            raise OnnxUnsupported(f"{encoder.name} has no onnx runtime")
        return encoder
    try:
        return OnnxEncoder(encoder, threads=threads).load()
    except OnnxUnsupported as exc:
        if runtime == "onnx":
            raise
        log.warning("encoding with PyTorch: %s", exc)
        return encoder
