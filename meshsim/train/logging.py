"""Run logs: `metrics.csv` (always) and TensorBoard (optional); the progress bar is meshsim.progress.

metrics.csv has one row per logged step (or epoch: `key`) with a fixed set of columns chosen at the first row;
later keys that were not in the header are dropped (validation columns are declared up front by the trainer). On
resume, rows after the checkpoint's step are removed, so the file matches an uninterrupted run. The one writer of
metrics.csv for the learned-simulator trainer and NCLaw fitting.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

from meshsim.outputs import write_atomic


class MetricsLog:
    def __init__(self, path: Path, columns: list[str], resume_step: int | None = None, tensorboard_dir=None,
                 key: str = "step"):
        self.path = Path(path)
        self.columns = [key, *[c for c in columns if c != key]]
        if resume_step is not None and self.path.is_file():
            self._truncate_after(resume_step)
        else:
            write_atomic(self.path, ",".join(self.columns) + "\n")
        self.tb = _tensorboard_writer(tensorboard_dir, resume_step) if tensorboard_dir else None

    def _truncate_after(self, step: int) -> None:
        with self.path.open(newline="") as f:
            rows = list(csv.reader(f))
        if rows and rows[0]:
            self.columns = rows[0]
        keep = [r for r in rows[1:] if r and _as_int(r[0]) is not None and _as_int(r[0]) <= step]
        lines = [",".join(self.columns)] + [",".join(r) for r in keep]
        write_atomic(self.path, "\n".join(lines) + "\n")

    def write(self, step: int, values: dict[str, float]) -> None:
        row = [str(step)] + [_fmt(values.get(c)) for c in self.columns[1:]]
        with self.path.open("a") as f:
            f.write(",".join(row) + "\n")
        if self.tb is not None:
            for key, value in values.items():
                if value is not None and math.isfinite(value):
                    self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """Rows of a metrics.csv as dicts of floats (empty cells are left out)."""
    with Path(path).open(newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def _tensorboard_writer(log_dir, resume_step):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the tensorboard package is optional
        print("meshsim: tensorboard is not installed; writing metrics.csv only (pip install tensorboard)",
              file=sys.stderr)
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=None if resume_step is None else resume_step + 1)


def _fmt(value) -> str:
    if value is None:
        return ""
    return f"{value:.8g}" if isinstance(value, float) else str(value)


def _as_int(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None
