"""Standard benchmarks from their published files, any model through one harness.

``formats`` reads the files (VLMEvalKit TSVs, MMMU records) into ``Sample``s; ``scoring`` and ``mmmu`` hold each
benchmark's official rule; ``tasks`` is the registry of declarative ``Task`` specs; ``backends`` answers prompts
with a vlmkit or a transformers model; ``harness`` runs a task (cached per sample, resumable) and scores
predictions; ``report`` writes results and gathers them into a leaderboard.
"""

from vlmkit.bench.formats import Sample, read_mmmu, read_tsv
from vlmkit.bench.tasks import TASKS, Task, get_task, register

__all__ = ["TASKS", "Sample", "Task", "get_task", "read_mmmu", "read_tsv", "register"]
