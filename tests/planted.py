"""Made-up words in planted groups: what fine-tuning must learn (no pretrained model knows them)."""

from __future__ import annotations

import pandas as pd

from coldbrew.data.schema import Dataset, DatasetSpec
from coldbrew.eval.protocols import Split
from coldbrew.models import Recommender, UserQuery
from coldbrew.train import TrainConfig

# made-up words: a pretrained model cannot know which of them belong together
GROUPS = [
    ["blorf zint", "quadle mip", "snorp vek"],
    ["trabble yon", "glimp stor", "wezzle dorn"],
    ["fropple kin", "yastle mure", "plonk vibber"],
    ["zuddle farn", "krimble osh", "tenwick pru"],
]


def planted() -> Dataset:
    items, inter = [], []
    for g, titles in enumerate(GROUPS):
        items += [(f"g{g}i{i}", t) for i, t in enumerate(titles)]
        for u in range(3):
            inter += [(f"g{g}u{u}", f"g{g}i{i}", 5.0, float(i)) for i in range(3)]
    # distractors nobody liked, so that validation Recall@20 has more than 20 items to rank
    syllables = ["ka", "lo", "mi", "ru", "te", "vo", "zi", "pa"]
    items += [(f"x{i}", f"{syllables[i % 8]}{syllables[i // 8]}bo dweel") for i in range(30)]
    return Dataset(
        DatasetSpec("planted", positive_threshold=4.0),
        pd.DataFrame(items, columns=["item_id", "title"]),
        pd.DataFrame(inter, columns=["user_id", "item_id", "value", "timestamp"]),
    )


def planted_split(data: Dataset) -> Split:
    """Validation: each group's third user's last item (the other users teach it)."""
    inter = data.interactions
    held = inter["user_id"].str.endswith("u2") & inter["item_id"].str.endswith("i2")
    return Split("cold-item", "planted", 0, inter[~held], inter[held], inter[held], info={})


def group_precision(model: Recommender) -> float:
    """Share of each item's top-2 neighbours (by liked-item query) in its own group."""
    found = 0
    for g, titles in enumerate(GROUPS):
        for i in range(len(titles)):
            recs = model.recommend(UserQuery(liked=(f"g{g}i{i}",)), k=2)
            found += sum(r.startswith(f"g{g}") for r in recs.ids)
    return found / (2 * sum(len(t) for t in GROUPS))


def tiny_config(**kw: object) -> TrainConfig:
    base: dict[str, object] = {
        "method": "lora",
        "max_steps": 20,
        "batch_size": 8,
        "learning_rate": 3e-3,
        "warmup_steps": 2,
        "max_seq_length": 16,
        "eval_every": 10,
        "patience": 5,
        "checkpoint_every": 5,
        "lora_rank": 4,
    }
    base.update(kw)
    return TrainConfig.from_dict(base)
