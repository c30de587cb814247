"""Chinese free-text wishes against a Chinese catalogue: hit@3 and MRR per encoder.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/zh_wishes.py
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/zh_wishes.py --encoders auto,default \\
        --models runs/zh-finetuned

The catalogue (``benchmarks/zh/``: 47 items in eight categories) and the wishes
(``benchmarks/zh/wishes.jsonl``: what a shopper would type, with the items that answer it) were
written by hand for issue 14. Each wish ranks the whole catalogue with the zero-shot model, the
way ``coldbrew recommend --data benchmarks/zh --text WISH`` does; ``auto`` is what that command
does with no ``--encoder`` flag (the catalogue's language picks the encoder). ``--models`` adds
saved model directories (e.g. a fine-tuned multilingual model from ``coldbrew train``): each keeps
its (fine-tuned) encoder and is fitted on this catalogue.
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import UTC, datetime
from pathlib import Path

from coldbrew.data import load_dataset
from coldbrew.eval.metrics import hit_rate_at_k, mean_metric, mrr_at_k
from coldbrew.models.base import Recommender, UserQuery
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text.factory import make_encoder
from coldbrew.text.language import catalogue_language, encoder_for

HERE = Path(__file__).resolve().parent / "zh"


def load_wishes(path: Path) -> list[tuple[str, list[str]]]:
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return [(row["text"], list(row["relevant"])) for row in rows]


def score(model: Recommender, wishes: list[tuple[str, list[str]]]) -> dict[str, float]:
    ranked = [list(model.recommend(UserQuery(text=text), k=10).ids) for text, _ in wishes]
    relevant = [ids for _, ids in wishes]
    return {
        "hit@3": mean_metric(hit_rate_at_k(ranked, relevant, 3)),
        "mrr": mean_metric(mrr_at_k(ranked, relevant, 10)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE, help="catalogue folder")
    parser.add_argument("--wishes", type=Path, default=HERE / "wishes.jsonl")
    parser.add_argument("--encoders", default="auto,default", help="comma-separated specs")
    parser.add_argument("--models", default="", help="comma-separated saved model dirs")
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    wishes = load_wishes(args.wishes)
    language = catalogue_language(dataset)
    print(f"# {dataset.summary()}; language {language}; {len(wishes)} wishes")
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}")
    print(f"{'encoder':<40}{'resolved':>16}{'hit@3':>8}{'MRR':>8}")
    runs: list[tuple[str, str, Recommender]] = []
    for spec in [s.strip() for s in args.encoders.split(",") if s.strip()]:
        resolved = encoder_for(spec, language)
        runs.append((spec, resolved, ZeroShotRecommender(make_encoder(resolved))))
    for path in [m.strip() for m in args.models.split(",") if m.strip()]:
        runs.append((path, "saved model", Recommender.load(path)))
    for label, resolved, model in runs:
        model.fit(dataset)  # a saved model keeps its encoder and reads this catalogue
        found = score(model, wishes)
        print(f"{label:<40}{resolved:>16}{found['hit@3']:>8.3f}{found['mrr']:>8.3f}")


if __name__ == "__main__":
    main()
