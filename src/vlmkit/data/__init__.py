"""Datasets: the canonical record format and its readers and writers, PyTorch adapters, and ShapesWorld."""

from vlmkit.data.records import QA, ObjectAnnotation, Record, RecordDataset, read_records, write_records

__all__ = ["QA", "ObjectAnnotation", "Record", "RecordDataset", "read_records", "write_records"]
