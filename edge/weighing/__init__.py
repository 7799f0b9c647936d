"""Legally relevant weighing data kept at the post: the append-only, hash-chained record store."""

from edge.weighing.records import WeighingRecords

__all__ = ["WeighingRecords"]
