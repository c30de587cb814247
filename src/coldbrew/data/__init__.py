"""Datasets: the schema, readers for generic folders and benchmark datasets, splits."""

from coldbrew.data.idmap import IdMap
from coldbrew.data.schema import ITEM_ID, TIMESTAMP, USER_ID, VALUE, Dataset, DatasetSpec

__all__ = ["ITEM_ID", "TIMESTAMP", "USER_ID", "VALUE", "Dataset", "DatasetSpec", "IdMap"]
