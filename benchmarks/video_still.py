"""Does a video model use time? Video QA and grounding on a clip folder with the true sampled frames, and with
every frame replaced by the clip's first one (times kept; ``evaluation.video_tasks.video_tasks(still=True)``).
Equal scores mean the model answers from one frame and the answer statistics, not from motion or change.

    .venv/bin/python benchmarks/video_still.py RUN/model videoworld/test --clips 50
"""

from __future__ import annotations

import argparse
import time

from vlmkit.checkpoints import from_pretrained
from vlmkit.data.records import RecordDataset
from vlmkit.evaluation.video_tasks import is_video_record, video_tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a VLM (e.g. a `vlmkit train video` run's model)")
    parser.add_argument("data", help="a clip folder (`vlmkit data video`)")
    parser.add_argument("--clips", type=int, default=50, help="the first N clips")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    model = from_pretrained(args.model).eval()
    dataset = RecordDataset(args.data)
    records = [r for r in dataset.records if is_video_record(r)][: args.clips]
    print(f"{'frames':<18} {'QA':>6} {'mIoU':>6} {'R@1@.5':>7} {'CPU s':>6}  QA per type")
    for still in (False, True):
        start = time.process_time()
        tasks = video_tasks(model, dataset, records, args.batch_size, still=still)
        qa, grounding = tasks["video_qa"](), tasks["video_grounding"]()
        types = ", ".join(f"{k} {v:.3f}" for k, v in sorted(qa["per_type"].items()))
        name = "first frame only" if still else "true frames"
        seconds = time.process_time() - start
        scores = f"{qa['accuracy']:6.3f} {grounding['miou']:6.3f} {grounding['r1@0.5']:7.3f}"
        print(f"{name:<18} {scores} {seconds:6.0f}  {types}")


if __name__ == "__main__":
    main()
