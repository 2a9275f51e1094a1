"""Per-level summary lines, summary.json/csv and the accuracy-vs-density plot."""
import os
from typing import List

from lottery_tf.foundations import fs
from lottery_tf.foundations import figures, store
from lottery_tf.errors import DamagedFile

RUNS = ("ticket", "reinit", "random_mask")


def _metrics(exp_dir: str, level: int, run: str):
  d = os.path.join(exp_dir, f"level_{level:02d}")
  path = os.path.join(d, "metrics.json") if run == "ticket" else os.path.join(
      d, run, "metrics.json")
  return _read(path)


def _read(path: str):
  """A run's metrics; None while it is missing or damaged (the runner
  recomputes a damaged one when its level comes)."""
  if not fs.exists(path):
    return None
  try:
    return store.read_json(path)
  except DamagedFile:
    return None


def _lmc(exp_dir: str, level: int):
  path = os.path.join(exp_dir, f"level_{level:02d}", "lmc", "metrics.json")
  return _read(path)


def _split(metrics: dict) -> str:
  return "validation" if "validation_accuracy" in metrics else "test"


def rows(exp_dir: str, levels: int, controls: List[str]) -> List[dict]:
  """One row per (level, run) that has finished."""
  out = []
  for level in range(levels + 1):
    for run in ("ticket", *controls):
      m = _metrics(exp_dir, level, run)
      if m is None:
        continue
      row = {"level": level, "run": run, "density": m["density"],
             "steps": m["steps"], "ms_per_step": m["ms_per_step"]}
      row.update(m["metrics"])
      lmc = _lmc(exp_dir, level) if run == "ticket" else None
      if lmc is not None:  # --lmc_every_level (Frankle et al. 2020)
        row["instability"] = lmc["instability"]
        row["connected_fraction"] = lmc["connected_fraction"]
      out.append(row)
  return out


def level_line(exp_dir: str, level: int, controls: List[str]) -> str:
  t = _metrics(exp_dir, level, "ticket")
  if t is None:
    return f"level {level:02d}: not run"
  parts = [f"level {level:02d}", f"density {100 * t['density']:6.2f}%",
           f"test acc {100 * t['metrics']['test_accuracy']:.2f}%"]
  if "validation_accuracy" in t["metrics"]:
    parts.append(f"val acc {100 * t['metrics']['validation_accuracy']:.2f}%")
  ctl = []
  for c in controls if level else ():
    m = _metrics(exp_dir, level, c)
    if m is not None:
      ctl.append(f"{c} {100 * m['metrics']['test_accuracy']:.2f}%")
  if ctl:
    parts.append("(" + ", ".join(ctl) + ")")
  lmc = _lmc(exp_dir, level)
  if lmc is not None:
    parts.append(f"instability {100 * lmc['instability']:.2f}%")
  parts.append(f"{t['ms_per_step']:.2f} ms/step")
  parts.append(f"{t['wall_seconds']:.0f}s")
  return "  ".join(parts)


def write_summary(exp_dir: str, levels: int, controls: List[str]) -> List[dict]:
  """Rewrites summary.json, summary.csv and accuracy_vs_density.png."""
  table = rows(exp_dir, levels, controls)
  hparams = None
  hp_path = os.path.join(exp_dir, "hparams.json")
  if fs.exists(hp_path):
    hparams = store.read_json(hp_path)
  store.write_json(os.path.join(exp_dir, "summary.json"),
                       {"rows": table, "provenance": hparams})
  if table:
    store.write_csv(os.path.join(exp_dir, "summary.csv"), table,
                        first=("density", "level", "run"))
    plot_accuracy_vs_density(
        table, os.path.join(exp_dir, "accuracy_vs_density.png"),
        title=os.path.basename(exp_dir.rstrip("/")))
  return table


def plot_accuracy_vs_density(table: List[dict], path: str, title: str = "",
                             metric: str = "test_accuracy") -> None:
  """Accuracy vs fraction of weights remaining (log x), one line per run."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  import matplotlib.ticker  # pylint: disable=g-import-not-at-top
  plt = figures.pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  dense = [r for r in table if r["level"] == 0 and r["run"] == "ticket"]
  styles = {"ticket": ("o-", "C0"), "reinit": ("s--", "C3"),
            "random_mask": ("^:", "C2")}
  for run in RUNS:
    pts = sorted(((r["density"], r[metric]) for r in table
                  if r["run"] == run or (run != "ticket" and r in dense)),
                 reverse=True)
    if len(pts) < (2 if run != "ticket" else 1):
      continue
    style, color = styles[run]
    ax.plot([100 * p[0] for p in pts], [100 * p[1] for p in pts], style,
            color=color, label=run.replace("_", " "))
  ax.set_xscale("log")
  ax.invert_xaxis()
  ticks = sorted({round(100 * r["density"], 1) for r in table}, reverse=True)
  if len(ticks) > 8:  # keep every other density readable
    ticks = ticks[::max(1, len(ticks) // 8)]
  ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
  ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
  ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
  ax.set_xlabel("weights remaining (%)")
  ax.set_ylabel(metric.replace("_", " ") + " (%)")
  ax.set_title(title, fontsize=9)
  ax.grid(True, which="both", alpha=0.3)
  ax.legend()
  fig.tight_layout()
  figures.save_figure(fig, path, dpi=120)
