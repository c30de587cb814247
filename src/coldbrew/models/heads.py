"""Cheap heads on frozen vectors: linear maps learned in seconds, no encoder training.

* :class:`AttributeMapRecommender` — attribute-only users. A ridge map from a user's attribute
  one-hot (plus, optionally, the vector of their attributes rendered as text) to the mean vector
  of the items they liked; at query time the mapped vector stands in for the attribute text.
* :class:`CFMapRecommender` — new items for warm users (the idea behind ALDI/Heater). A ridge map
  from item text vectors into a collaborative model's item-factor space, taught by the warm items'
  factors; cold items get mapped factors, and users are scored with their CF vectors.

Each lives in its own module (:mod:`coldbrew.models.attrmap`, :mod:`coldbrew.models.cfmap`, the
ridge maps they share in :mod:`coldbrew.models.ridge`); this one names them where users import
them from.
"""

from __future__ import annotations

from coldbrew.models.attrmap import MAPPED_CAPACITY, AttributeMapRecommender, attribute_tokens
from coldbrew.models.cfmap import CFMapRecommender, FactorModel
from coldbrew.models.ridge import apply_ridge, fit_ridge

__all__ = [
    "MAPPED_CAPACITY",
    "AttributeMapRecommender",
    "CFMapRecommender",
    "FactorModel",
    "apply_ridge",
    "attribute_tokens",
    "fit_ridge",
]
