"""The "one liked Chinese item turns the whole list Chinese" effect, on the bilingual sample.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/mixed_language.py

The sample holds 20 English and 18 Chinese items, 17 of them pairs on the same thing in the two
languages (a spring jacket and 轻薄春季夹克...). For each item of a pair, a new user who liked
only that item gets recommendations from the zero-shot model with the multilingual encoder:

- *same-script share@5*: how many of the top 5 are in the liked item's script (the effect;
  about 0.5 would mean the script does not matter, 1.0 that it is all that matters);
- *partner MRR*: reciprocal rank of the same thing in the other language (higher is better).

Both with and without per-script centring (``ZeroShotRecommender(center_languages=...)``). A few
free-text wishes also report the rank of the right item in each language.
"""

from __future__ import annotations

import argparse

import numpy as np

from coldbrew.data import sample_dataset
from coldbrew.models.base import UserQuery
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text.factory import make_encoder
from coldbrew.text.language import is_cjk

PAIRS = {1: 1, 2: 2, 3: 3, 4: 5, 5: 6, 6: 7, 8: 9, 9: 10, 10: 11, 11: 12, 12: 13, 13: 14}
PAIRS |= {14: 15, 15: 17, 16: 18, 17: 20, 18: 19}
WISHES = [
    ("I need a light jacket for a spring outing", "en-001", "zh-001"),
    ("想找一本好看的科幻小说", "zh-011", "en-012"),
    ("a mechanical keyboard for coding", "en-006", "zh-005"),
    ("坐地铁太吵了，想要降噪耳机", "zh-006", "en-007"),
    ("我想在家练瑜伽", "zh-014", "en-015"),
    ("brewing coffee at home", "en-014", "zh-013"),
]


def liked_effect(model: ZeroShotRecommender, cjk: dict[str, bool]) -> tuple[float, float]:
    shares, reciprocal = [], []
    n = len(model.item_ids)
    for zh, en in PAIRS.items():
        for liked, partner in ((f"zh-{zh:03d}", f"en-{en:03d}"), (f"en-{en:03d}", f"zh-{zh:03d}")):
            ranked = list(model.recommend(UserQuery(liked=(liked,)), k=n).ids)
            shares.append(np.mean([cjk[i] == cjk[liked] for i in ranked[:5]]))
            reciprocal.append(1 / (ranked.index(partner) + 1))
    return float(np.mean(shares)), float(np.mean(reciprocal))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="multilingual")
    args = parser.parse_args()
    dataset = sample_dataset()
    text = dataset.items["title"] + " " + dataset.items["description"]
    cjk = dict(zip(dataset.items["item_id"], (is_cjk(t) for t in text)))
    encoder = make_encoder(args.encoder)
    print(f"# {dataset.summary()}; encoder {encoder.name}; {2 * len(PAIRS)} one-like users")
    print(
        f"{'centring':<10}{'same-script share@5':>22}{'partner MRR':>13}  wish ranks (own, other)"
    )
    for centre in (False, True):
        model = ZeroShotRecommender(encoder, center_languages=centre).fit(dataset)
        share, mrr = liked_effect(model, cjk)
        n = len(model.item_ids)
        ranks = []
        for wish, own, other in WISHES:
            ranked = list(model.recommend(UserQuery(text=wish), k=n).ids)
            ranks.append((ranked.index(own) + 1, ranked.index(other) + 1))
        label = "on" if centre else "off"
        print(f"{label:<10}{share:>22.3f}{mrr:>13.3f}  {ranks}")


if __name__ == "__main__":
    main()
