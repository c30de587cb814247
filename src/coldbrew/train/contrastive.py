"""Contrastive fine-tuning of a sentence-transformers encoder on interaction pairs.

Loss: in-batch softmax over cosines (MultipleNegativesRankingLoss), with other pairs' items as
negatives; a negative that is the same item as the positive is masked out. Full fine-tuning or
LoRA adapters (``peft``); optional FGM adversarial steps on the token embeddings and augmentation
of the user side. Every step is a pure function of (seed, step), so a run resumed from a
checkpoint continues exactly where it stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from coldbrew.train.adversarial import FGM
from coldbrew.train.batching import CHUNK_TEXTS, embed_sides
from coldbrew.train.config import TrainConfig
from coldbrew.train.losses import (
    DISTILL_LOSSES,
    _require_torch,
    distill_loss,
    in_batch_cross_entropy,
    in_batch_loss,
)
from coldbrew.train.pairs import TrainingPair, augment_parts
from coldbrew.train.progress import say

__all__ = [
    "DISTILL_LOSSES",
    "ContrastiveTrainer",
    "Teacher",
    "TrainResult",
    "Validator",
    "add_lora",
    "distill_loss",
    "in_batch_cross_entropy",
    "in_batch_loss",
]

Validator = Callable[[Any], float]
"""Called with the live model; returns the validation metric (Recall@20 unless the trainer's
``metric_name`` says otherwise)."""


@dataclass
class TrainResult:
    """What a run did: its steps, losses, validation curve and the best checkpoint."""

    steps: int = 0
    best_step: int = 0
    best_metric: float = float("-inf")
    losses: list[float] = field(default_factory=list)
    validation: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False
    metric: str = "recall@20"

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "best_step": self.best_step,
            # never validated (no check before the end): null, not -Infinity, in the JSON
            f"best_val_{self.metric}": self.best_metric if np.isfinite(self.best_metric) else None,
            "first_loss": self.losses[0] if self.losses else None,
            "last_loss": float(np.mean(self.losses[-20:])) if self.losses else None,
            "validation": self.validation,
            "seconds": self.seconds,
            "stopped_early": self.stopped_early,
        }


def add_lora(st_model: Any, config: TrainConfig) -> Any:
    """Inject LoRA adapters into the transformer of ``st_model`` in place; return the PeftModel."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise ImportError("LoRA needs: pip install coldbrew[train]") from exc
    lora = LoraConfig(
        r=config.lora.lora_rank,
        lora_alpha=config.lora.lora_alpha,
        lora_dropout=config.lora.lora_dropout,
        target_modules=["query", "key", "value", "dense"],
    )
    return get_peft_model(st_model[0].auto_model, lora)


Teacher = Callable[[Sequence[TrainingPair], np.random.Generator], np.ndarray]
"""(batch, rng) -> the teacher's logits for (query i, item j) of one batch; NaN: not scored."""


class ContrastiveTrainer:
    """Fine-tunes ``st_model`` (a ``SentenceTransformer``) on ``pairs``.

    ``validate`` scores the live model on the protocol's validation split (never its test);
    the best weights by that score are restored at the end. ``checkpoint_dir`` makes the run
    resumable: call :meth:`train` again with the same arguments after a crash. ``user_model``
    (a second ``SentenceTransformer``) makes the towers separate: it encodes the user side and
    ``st_model`` the items; without it ``st_model`` reads both. FGM perturbs ``st_model``'s
    token embeddings only.
    """

    def __init__(
        self,
        config: TrainConfig,
        st_model: Any,
        pairs: Sequence[TrainingPair],
        *,
        validate: Validator | None = None,
        checkpoint_dir: str | Path | None = None,
        show_progress: bool = False,
        teacher: Teacher | None = None,
        user_model: Any = None,
    ) -> None:
        if len(pairs) < 2:
            raise ValueError(f"need at least 2 training pairs, got {len(pairs)}")
        self.config = config
        self.st_model = st_model
        self.user_model = user_model
        self.pairs = list(pairs)
        self.validate = validate
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.show_progress = show_progress
        self.peft_model: Any = None
        self.user_peft_model: Any = None
        self.teacher = teacher
        self.progress_label = "fine-tune"
        self.metric_name = "recall@20"  # what ``validate`` returns, as train.json names it
        self.validate_at_start = True  # the starting weights are a candidate for "best"
        self.chunk_texts = CHUNK_TEXTS  # texts per forward pass (length-sorted chunks)
        counts: dict[str, int] = {}
        for pair in self.pairs:
            counts[pair.item_id] = counts.get(pair.item_id, 0) + 1
        self._log_q = {i: float(np.log(c / len(self.pairs))) for i, c in counts.items()}

    # ---- setup ----------------------------------------------------------------------------
    def _prepare_model(self) -> list[Any]:
        torch = _require_torch()
        torch.manual_seed(self.config.seed)
        for _, model in self._towers():
            model.max_seq_length = self.config.max_seq_length
        if self.config.method == "lora":
            self.peft_model = add_lora(self.st_model, self.config)
            if self.user_model is not None:
                self.user_peft_model = add_lora(self.user_model, self.config)
        else:
            for _, model in self._towers():
                for param in model.parameters():
                    param.requires_grad_(True)
        return [p for _, m in self._towers() for p in m.parameters() if p.requires_grad]

    def _towers(self) -> list[tuple[str, Any]]:
        """(parameter-name prefix, model) of every tower that trains."""
        towers = [("", self.st_model)]
        if self.user_model is not None:
            towers.append(("user.", self.user_model))
        return towers

    def _set_training(self, training: bool) -> None:
        for _, model in self._towers():
            model.train(training)

    def _batch(self, step: int) -> list[TrainingPair]:
        size = min(self.config.optimisation.batch_size, len(self.pairs))
        per_epoch = max(1, len(self.pairs) // size)
        epoch, offset = divmod(step, per_epoch)
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.pairs))
        return [self.pairs[i] for i in order[offset * size : (offset + 1) * size]]

    def _embed_sides(self, queries: list[str], items: list[str]) -> tuple[Any, Any]:
        """Unit vectors of the query and item texts (one tower reads both sides in one go)."""
        if self.user_model is not None:
            (query_vectors,) = embed_sides(self.user_model, [queries], self.chunk_texts)
            (item_vectors,) = embed_sides(self.st_model, [items], self.chunk_texts)
            return query_vectors, item_vectors
        query_vectors, item_vectors = embed_sides(self.st_model, [queries, items], self.chunk_texts)
        return query_vectors, item_vectors

    def _loss(self, batch: list[TrainingPair], rng: np.random.Generator) -> Any:
        parts = [
            augment_parts(p.query_parts, rng) if self.config.augmentation.augment else p.query_parts
            for p in batch
        ]
        # the batch's items, then every pair's mined hard negatives (extra columns)
        columns = [(p.item_id, p.item) for p in batch]
        columns += [negative for p in batch for negative in p.negatives]
        queries, items = self._embed_sides(
            [". ".join(p) for p in parts], [text for _, text in columns]
        )
        log_q = None
        if self.config.loss.logq_correction:
            torch = _require_torch()
            # in-batch items were drawn by popularity; mined ones were not: they get the
            # uniform sampling probability (as in mixed negative sampling, Yang et al. 2020)
            uniform = -float(np.log(len(self._log_q)))
            log_q = torch.tensor(
                [self._log_q[i] for i, _ in columns[: len(batch)]]
                + [uniform] * (len(columns) - len(batch)),
                dtype=torch.float32,
                device=queries.device,
            )
        loss = in_batch_loss(
            queries,
            items,
            [i for i, _ in columns],
            [p.anchor_id for p in batch],
            self.config.loss.scale,
            log_q,
        )
        if self.teacher is not None and self.config.distillation.distill_weight > 0:
            target = self.teacher(batch, rng)
            loss = loss + self.config.distillation.distill_weight * distill_loss(
                queries @ items[: len(batch)].T,
                target,
                self.config.loss.scale,
                self.config.distillation.distill_loss,
            )
        return loss

    # ---- checkpoints ----------------------------------------------------------------------
    def _trainable_state(self) -> dict[str, Any]:
        return {
            prefix + n: p.detach().clone().contiguous()
            for prefix, model in self._towers()
            for n, p in model.named_parameters()
            if p.requires_grad
        }

    def _load_trainable(self, state: dict[str, Any]) -> None:
        torch = _require_torch()
        params = {
            prefix + n: p for prefix, model in self._towers() for n, p in model.named_parameters()
        }
        with torch.no_grad():
            for name, value in state.items():
                params[name].copy_(value)

    def _save_checkpoint(
        self,
        step: int,
        optimizer: Any,
        scheduler: Any,
        result: TrainResult,
        best: dict[str, Any] | None,
    ) -> None:
        if self.checkpoint_dir is None:
            return
        from safetensors.torch import save_file

        torch = _require_torch()
        tmp = self.checkpoint_dir / "checkpoint.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        save_file(self._trainable_state(), str(tmp / "trainable.safetensors"))
        if best is not None:
            save_file(best, str(tmp / "best.safetensors"))
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
            tmp / "optimizer.pt",
        )
        state = {"step": step, "config": self.config.to_dict(), **result.to_dict()}
        state["losses"] = result.losses
        (tmp / "state.json").write_text(json.dumps(state))
        final = self.checkpoint_dir / "checkpoint"
        if final.exists():
            old = self.checkpoint_dir / "checkpoint.old"
            final.rename(old)
            tmp.rename(final)
            for f in old.iterdir():
                f.unlink()
            old.rmdir()
        else:
            tmp.rename(final)

    def _resume(
        self, optimizer: Any, scheduler: Any, result: TrainResult
    ) -> tuple[int, dict[str, Any] | None]:
        final = self.checkpoint_dir / "checkpoint" if self.checkpoint_dir else None
        if final is None or not (final / "state.json").exists():
            return 0, None
        from safetensors.torch import load_file

        torch = _require_torch()
        state = json.loads((final / "state.json").read_text())
        if TrainConfig.from_dict(state["config"]) != self.config:
            raise ValueError(f"checkpoint in {final} was made with another config; remove it")
        self._load_trainable(load_file(str(final / "trainable.safetensors")))
        # saved on any device; load_state_dict moves the state onto the parameters' device
        opt = torch.load(final / "optimizer.pt", map_location="cpu", weights_only=True)
        optimizer.load_state_dict(opt["optimizer"])
        scheduler.load_state_dict(opt["scheduler"])
        result.losses = list(state["losses"])
        result.validation = list(state["validation"])
        result.best_step = state["best_step"]
        saved = state[f"best_val_{result.metric}"]
        result.best_metric = float("-inf") if saved is None else saved
        best = (
            load_file(str(final / "best.safetensors"))
            if (final / "best.safetensors").exists()
            else None
        )
        return int(state["step"]), best

    # ---- the loop -------------------------------------------------------------------------
    def train(self, stop_after: int | None = None) -> TrainResult:
        """Run to ``max_steps`` or early stop; ``stop_after`` simulates a crash (tests)."""
        torch = _require_torch()
        cfg = self.config.optimisation
        checks = self.config.validation
        seed = self.config.seed
        params = self._prepare_model()
        optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.01)

        def schedule(step: int) -> float:
            if step < cfg.warmup_steps:
                return (step + 1) / cfg.warmup_steps
            return max(0.0, (cfg.max_steps - step) / max(1, cfg.max_steps - cfg.warmup_steps))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        result = TrainResult(metric=self.metric_name)
        start_step, best = self._resume(optimizer, scheduler, result)
        if (
            best is None
            and self.validate is not None
            and start_step == 0
            and self.validate_at_start
        ):
            result.best_metric = self._validate(0, result)
            best = self._trainable_state()
        fgm = None
        if self.config.augmentation.fgm_epsilon > 0:
            fgm = FGM(self.st_model[0].auto_model.embeddings, self.config.augmentation.fgm_epsilon)
        began = time.perf_counter()
        say(f"{self.progress_label}: {cfg.max_steps - start_step} steps", self.show_progress)
        bar = tqdm(
            range(start_step, cfg.max_steps),
            desc=self.progress_label,
            disable=not self.show_progress,
            initial=start_step,
            total=cfg.max_steps,
        )
        bad_checks = _bad_checks(result)
        step = start_step
        for step in bar:
            if stop_after is not None and step >= stop_after:
                break
            self._set_training(True)
            torch.manual_seed(seed * 1_000_003 + step)
            rng = np.random.default_rng([seed, step, 7])
            batch = self._batch(step)
            optimizer.zero_grad()
            loss = self._loss(batch, rng)
            loss.backward()
            if fgm is not None:
                fgm.prepare()
                torch.manual_seed(seed * 1_000_003 + step)
                adv = self._loss(batch, np.random.default_rng([seed, step, 7]))
                adv.backward()
                fgm.reset()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            result.losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(result.losses[-20:]):.3f}")
            done = step + 1
            if self.validate is not None and (
                done % checks.eval_every == 0 or done == cfg.max_steps
            ):
                metric = self._validate(done, result)
                if metric > result.best_metric:
                    result.best_metric, result.best_step, best = (
                        metric,
                        done,
                        self._trainable_state(),
                    )
                    bad_checks = 0
                else:
                    bad_checks += 1
            if done % cfg.checkpoint_every == 0 or done == cfg.max_steps:
                self._save_checkpoint(done, optimizer, scheduler, result, best)
            if self.validate is not None and bad_checks >= checks.patience:
                result.stopped_early = True
                step = done
                break
            step = done
        if fgm is not None:
            fgm.handle.remove()
        result.steps = step if stop_after is None else min(step, stop_after)
        result.seconds = time.perf_counter() - began
        if best is not None and stop_after is None:
            self._load_trainable(best)
        elif best is None:
            result.best_step = result.steps
        self._set_training(False)
        return result

    def _validate(self, step: int, result: TrainResult) -> float:
        """The validation metric of the live weights, recorded in ``result`` and printed."""
        if self.validate is None:
            raise ValueError("this trainer has no validation function")
        what = "the starting weights" if step == 0 else f"step {step}"
        say(f"{self.progress_label}: validating {what}", self.show_progress)
        self._set_training(False)
        metric = float(self.validate(self.st_model))
        result.validation.append({"step": step, f"val_{result.metric}": metric})
        self._set_training(True)
        best = max(metric, result.best_metric)
        say(
            f"{self.progress_label}: step {step} validation {result.metric} {metric:.4f} "
            f"(best {best:.4f})",
            self.show_progress,
        )
        return metric

    def merged_model(self) -> Any:
        """The ``SentenceTransformer`` with LoRA adapters merged into its weights."""
        if self.peft_model is not None:
            self.peft_model.merge_and_unload()
            self.peft_model = None
        return self.st_model

    def merged_user_model(self) -> Any:
        """The separate user tower with its adapters merged (``None`` when towers are shared)."""
        if self.user_peft_model is not None:
            self.user_peft_model.merge_and_unload()
            self.user_peft_model = None
        return self.user_model


def _bad_checks(result: TrainResult) -> int:
    """Validation checks since the best one (to restore patience on resume)."""
    count = 0
    for entry in reversed(result.validation):
        if entry["step"] == result.best_step:
            break
        count += 1
    return count
