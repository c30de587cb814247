"""Nearest-neighbour search over item vectors."""

from coldbrew.index.exact import ExactIndex, top_k

__all__ = ["ExactIndex", "top_k"]
