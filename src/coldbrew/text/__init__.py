"""Text encoders and templates."""

from coldbrew.text.encoder import Encoder, HashingEncoder, l2_normalize, tokenize
from coldbrew.text.templates import ItemTemplate, UserTemplate

__all__ = ["Encoder", "HashingEncoder", "ItemTemplate", "UserTemplate", "l2_normalize", "tokenize"]
