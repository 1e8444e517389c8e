"""Per-epoch metrics: ``metrics.jsonl`` (one JSON object per line), ``metrics.csv`` and TensorBoard.

Each record holds the epoch, the global iteration, the learning rate, the epoch-mean training losses
(``loss_*``, ``total_loss``), throughput, and the evaluation metrics (``AP``, ``AP50``, ...) when the
epoch was evaluated. TensorBoard events go to ``<run>/tensorboard`` when the ``tensorboard`` package is
installed (it is optional).
"""
from __future__ import annotations

import csv
import importlib.util
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

logger = logging.getLogger(__name__)

__all__ = ["MetricsLogger", "read_metrics"]


class MetricsLogger:
    """Appends epoch records to ``metrics.jsonl`` and rewrites ``metrics.csv`` (rank 0 only).

    Args:
        out_dir: the run folder.
        tensorboard: also write TensorBoard scalars when ``tensorboard`` is installed.
        resume: keep existing records whose epoch is below the resumed epoch (``start_epoch``).
        start_epoch: first epoch this process will log (records at or after it are dropped on resume).
    """

    def __init__(self, out_dir: Union[str, Path], tensorboard: bool = True, resume: bool = False,
                 start_epoch: int = 0) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.out_dir / "metrics.jsonl"
        self.csv_path = self.out_dir / "metrics.csv"
        self.records: List[Dict[str, Any]] = []
        if resume and self.jsonl_path.is_file():
            self.records = [r for r in read_metrics(self.jsonl_path) if int(r.get("epoch", 0)) < start_epoch]
        self._rewrite_jsonl()
        self._writer = None
        if tensorboard and importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.out_dir / "tensorboard"))
        elif tensorboard:
            logger.debug("tensorboard is not installed; skipping TensorBoard events.")

    def _rewrite_jsonl(self) -> None:
        tmp = self.jsonl_path.with_name(".metrics.jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in self.records))
        os.replace(tmp, self.jsonl_path)

    def log(self, record: Dict[str, Any]) -> None:
        """Append one epoch record (numbers and strings only)."""
        clean = {k: _jsonable(v) for k, v in record.items()}
        self.records.append(clean)
        with self.jsonl_path.open("a") as handle:
            handle.write(json.dumps(clean) + "\n")
        self._write_csv()
        if self._writer is not None:
            step = int(clean.get("iteration", len(self.records)))
            for key, value in clean.items():
                if isinstance(value, (int, float)) and key not in ("epoch", "iteration"):
                    group = "val" if key.startswith(("AP", "AR")) else "train"
                    self._writer.add_scalar(f"{group}/{key}", value, step)
            self._writer.flush()

    def _write_csv(self) -> None:
        columns: List[str] = []
        for record in self.records:
            columns += [k for k in record if k not in columns]
        tmp = self.csv_path.with_name(".metrics.csv.tmp")
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for record in self.records:
                writer.writerow({k: record.get(k, "") for k in columns})
        os.replace(tmp, self.csv_path)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return value


def read_metrics(path: Union[str, Path]) -> List[Dict[str, Any]]:
    """Records of a ``metrics.jsonl`` file (a truncated last line is skipped)."""
    records: List[Dict[str, Any]] = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("Skipping a malformed line of %s", path)
    return records


def last_value(records: List[Dict[str, Any]], key: str) -> Optional[float]:
    """The last non-null ``key`` in ``records``."""
    for record in reversed(records):
        if record.get(key) is not None:
            return float(record[key])
    return None
