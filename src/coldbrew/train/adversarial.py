"""FGM adversarial steps for contrastive fine-tuning: a second pass on perturbed token
embeddings."""

from __future__ import annotations

from typing import Any

from coldbrew.train.losses import _require_torch


class FGM:
    """Fast Gradient Method on the token-embedding output: a second pass at ``x + eps g/|g|``."""

    def __init__(self, embeddings: Any, epsilon: float) -> None:
        self.epsilon = epsilon
        self.outputs: list[Any] = []
        self.deltas: list[Any] = []
        self.mode = "record"
        self.handle = embeddings.register_forward_hook(self._hook)

    def _hook(self, module: Any, inputs: Any, output: Any) -> Any:
        if self.mode == "record":
            torch = _require_torch()
            if not torch.is_grad_enabled():  # validation passes: nothing to perturb later
                return output
            if not output.requires_grad:  # frozen embeddings (LoRA): make the output a leaf
                output = output.detach().requires_grad_(True)
            output.retain_grad()
            self.outputs.append(output)
            return output
        if self.mode == "perturb":
            return output + self.deltas.pop(0)
        return output

    def prepare(self) -> None:
        torch = _require_torch()
        self.deltas = []
        for out in self.outputs:
            grad = out.grad if out.grad is not None else torch.zeros_like(out)
            norm = grad.norm()
            delta = self.epsilon * grad / norm if norm > 0 else torch.zeros_like(grad)
            self.deltas.append(delta.detach())
        self.outputs = []
        self.mode = "perturb"

    def reset(self) -> None:
        self.outputs, self.deltas, self.mode = [], [], "record"
