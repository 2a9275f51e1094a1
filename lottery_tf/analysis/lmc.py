"""Linear mode connectivity: instability (Frankle et al. 2020) and per-example
loss barriers (Paul et al. 2022).

Two copies of a network are trained from the same starting point (weights,
mask, step) with different data order and augmentation (SGD noise); then the
network w(alpha) = (1 - alpha) w1 + alpha w2 is evaluated along the path:

* error barrier ("instability") = max_alpha err(alpha) - (err(0) + err(1))/2,
  on the test set; a network is "stable" when it is below ~2%;
* per-example loss barrier at alpha = 0.5, for each training example i:
  l_i(w(0.5)) - (l_i(w1) + l_i(w2)) / 2; an example is *linearly connected*
  when its barrier is below a threshold.

Every weight is interpolated, BatchNorm's moving mean and variance included
(no re-estimation of the statistics on the path): that is the plain linear
path of the whole network state. Masks stay fixed; both copies share the
mask, so interpolated kernels are exactly sparse too.
"""
import os
import time
from typing import Dict, Optional, Tuple

import numpy as np

from lottery_tf.foundations import figures, store
from lottery_tf.analysis import per_example
from lottery_tf.training.rewind import load_weights

#: Data seed of the second copy, relative to --seed (the first copy trains on
#: --seed's data order, as the ticket of the same level does).
COPY_SEED_OFFSET = 40_009


def alphas(points: int) -> np.ndarray:
  return np.linspace(0.0, 1.0, int(points))


def interpolate(w1: Dict[str, np.ndarray], w2: Dict[str, np.ndarray],
                alpha: float) -> Dict[str, np.ndarray]:
  """(1 - alpha) * w1 + alpha * w2, weight by weight (same keys)."""
  if set(w1) != set(w2):
    raise ValueError(f"the two networks differ in weights: "
                     f"{sorted(set(w1) ^ set(w2))[:5]}")
  out = {}
  for key, a in w1.items():
    b = w2[key]
    if a.shape != b.shape:
      raise ValueError(f"weight {key}: shapes {a.shape} and {b.shape}")
    mixed = (1.0 - alpha) * a.astype(np.float64) + alpha * b.astype(np.float64)
    out[key] = mixed.astype(a.dtype)
  return out


def error_barrier(errors) -> float:
  """max over the path of err(alpha) - mean of the two endpoints' errors."""
  errors = np.asarray(errors, np.float64)
  return float(errors.max() - 0.5 * (errors[0] + errors[-1]))


def per_example_barrier(loss_mid, loss_1, loss_2) -> np.ndarray:
  """l_i(midpoint) - (l_i(w1) + l_i(w2)) / 2, one entry per example."""
  return (np.asarray(loss_mid, np.float64)
          - 0.5 * (np.asarray(loss_1, np.float64)
                   + np.asarray(loss_2, np.float64)))


def evaluate_path(model, w1: Dict[str, np.ndarray], w2: Dict[str, np.ndarray],
                  datasets: Dict[str, Tuple[object, int]], *, points: int = 11,
                  threshold: float = 0.1, per_example_split: str = "train",
                  instability_split: str = "test") -> Tuple[dict, dict]:
  """Evaluates ``model`` along the linear path from w1 to w2.

  Args:
    model: a model whose ``named_weights`` are the keys of w1/w2 (masks, if
      it is wrapped, already set); its weights are overwritten.
    datasets: split -> (dataset yielding (x, y, index), number of examples).
    points: alphas, evenly spaced in [0, 1], ends included.
    threshold: of the per-example loss barrier (nats) for "connected".

  Returns:
    (summary, per-example arrays of ``per_example_split``: ``loss_1``,
    ``loss_2``, ``loss_mid``, ``barrier``, ``labels``).
  """
  began = time.time()
  grid = alphas(points)
  rows = []
  kept = {}
  for alpha in sorted(set(grid.tolist()) | {0.5}):
    load_weights(model, interpolate(w1, w2, alpha))
    row = {"alpha": round(float(alpha), 9)}
    for split, (ds, n) in datasets.items():
      if split != per_example_split and not np.isclose(grid, alpha).any():
        continue
      out = per_example.stats(model, ds, n)
      row[f"{split}_error"] = float(1.0 - out["correct"].mean())
      row[f"{split}_loss"] = float(out["loss"].mean())
      if split == per_example_split and alpha in (0.0, 0.5, 1.0):
        kept[alpha] = out
    if np.isclose(grid, alpha).any():
      rows.append(row)
  arrays = {
      "loss_1": kept[0.0]["loss"], "loss_2": kept[1.0]["loss"],
      "loss_mid": kept[0.5]["loss"], "labels": kept[0.0]["labels"],
  }
  arrays["barrier"] = per_example_barrier(
      arrays["loss_mid"], arrays["loss_1"], arrays["loss_2"]).astype(np.float32)
  barrier = arrays["barrier"]
  summary = {"alphas": [r["alpha"] for r in rows], "rows": rows,
             "barrier_threshold": float(threshold),
             "bn_statistics": "interpolated"}
  for split in datasets:
    errors = [r[f"{split}_error"] for r in rows]
    losses = [r[f"{split}_loss"] for r in rows]
    summary[f"{split}_error_barrier"] = error_barrier(errors)
    summary[f"{split}_loss_barrier"] = error_barrier(losses)
    summary[f"{split}_error_endpoints"] = [errors[0], errors[-1]]
  split = instability_split if instability_split in datasets else next(
      iter(datasets))
  summary["instability"] = summary[f"{split}_error_barrier"]
  summary["instability_split"] = split
  summary["per_example_split"] = per_example_split
  summary["connected_fraction"] = float((barrier < threshold).mean())
  summary["per_example_barrier_mean"] = float(barrier.mean())
  summary["per_example_barrier_median"] = float(np.median(barrier))
  summary["num_examples"] = int(len(barrier))
  summary["eval_seconds"] = time.time() - began
  return summary, arrays


def save(directory: str, summary: dict, arrays: dict, title: str = "",
         name: str = "metrics.json", writer: store.Writer = store.LOCAL) -> str:
  """per_example.npz, path.png, then ``name`` (last: it marks it done)."""
  writer.write_npz(os.path.join(directory, "per_example.npz"), arrays)
  plot_path(summary, os.path.join(directory, "path.png"), title=title,
            writer=writer)
  path = os.path.join(directory, name)
  writer.write_json(path, summary)
  return path


def plot_path(summary: dict, path: str, title: str = "",
              writer: store.Writer = store.LOCAL) -> None:
  """Error (solid) and loss (dashed, right axis) along the path, per split."""
  plt = figures.pyplot()
  rows = summary["rows"]
  a = [r["alpha"] for r in rows]
  fig, ax = plt.subplots(figsize=(5.5, 3.6))
  ax2 = ax.twinx()
  for i, split in enumerate(s for s in ("train", "validation", "test")
                            if f"{s}_error" in rows[0]):
    ax.plot(a, [100 * r[f"{split}_error"] for r in rows], "o-", color=f"C{i}",
            label=f"{split} error")
    ax2.plot(a, [r[f"{split}_loss"] for r in rows], "--", color=f"C{i}",
             alpha=0.6, label=f"{split} loss")
  ax.set_xlabel("alpha  (w = (1-alpha) w1 + alpha w2)")
  ax.set_ylabel("error (%)")
  ax2.set_ylabel("loss")
  ax.set_title(f"{title}\ninstability {100 * summary['instability']:.2f}%, "
               f"connected {100 * summary['connected_fraction']:.1f}%",
               fontsize=8)
  lines = ax.get_legend_handles_labels()
  lines2 = ax2.get_legend_handles_labels()
  ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7)
  ax.grid(True, alpha=0.3)
  fig.tight_layout()
  figures.save_figure(fig, path, writer, dpi=110)


def datasets_for(dhp, info, batch_size: int = 1000,
                 splits=("train", "test")) -> Dict[str, Tuple[object, int]]:
  """split -> (un-augmented batches with index, number of examples)."""
  from lottery_tf import data  # pylint: disable=g-import-not-at-top
  return {s: (data.load(dhp, s, batch_size=batch_size, with_index=True),
              info.num_examples[s]) for s in splits}


def instability_line(summary: Optional[dict]) -> str:
  if not summary:
    return ""
  return (f"instability {100 * summary['instability']:.2f}%, connected "
          f"{100 * summary['connected_fraction']:.1f}%")
