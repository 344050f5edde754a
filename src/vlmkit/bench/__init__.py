"""Standard benchmarks from their published files, any model through one harness.

``formats`` reads the files (VLMEvalKit TSVs, MMMU records) into ``Sample``s; ``scoring`` and ``mmmu`` hold each
benchmark's official rule.
"""

from vlmkit.bench.formats import Sample, read_mmmu, read_tsv

__all__ = ["Sample", "read_mmmu", "read_tsv"]
