"""Per-level summary lines, summary.json/csv and the accuracy-vs-density plot."""
import os
from typing import Dict, List

from lottery_tf import paths
from lottery_tf.foundations import figures, store
from lottery_tf.errors import DamagedFile

#: Line styles of the built-in runs; any other branch gets the next colour.
STYLES = {"ticket": ("o-", "C0"), "reinit": ("s--", "C3"),
          "random_mask": ("^:", "C2")}


def _metrics(exp_dir: str, level: int, run: str, writer: store.Writer):
  return _read(paths.metrics(paths.run(exp_dir, level, run)), writer)


def _read(path: str, writer: store.Writer):
  """A run's metrics; None while it is missing or damaged (the runner
  recomputes a damaged one when its level comes)."""
  if not writer.exists(path):
    return None
  try:
    return writer.read_json(path)
  except DamagedFile:
    return None


def _lmc(exp_dir: str, level: int, writer: store.Writer):
  return _read(paths.metrics(paths.run(exp_dir, level, "lmc")), writer)


def _split(metrics: dict) -> str:
  return "validation" if "validation_accuracy" in metrics else "test"


def rows(exp_dir: str, levels: int, controls: List[str],
         writer: store.Writer = store.LOCAL) -> List[dict]:
  """One row per (level, run) that has finished; each names its experiment
  (directory name: name-hash), --seed and replicate (find --replicates), so
  the summaries of several experiments concatenate into one table."""
  out = []
  experiment = os.path.basename(exp_dir.rstrip("/"))
  for level in range(levels + 1):
    for run in (paths.TICKET_RUN, *controls):
      m = _metrics(exp_dir, level, run, writer)
      if m is None:
        continue
      row = {"level": level, "run": run, "density": m["density"],
             "steps": m["steps"], "ms_per_step": m["ms_per_step"],
             "experiment": experiment, "seed": m.get("seed"),
             "replicate": m.get("replicate", 0)}
      row.update(m["metrics"])
      lmc = _lmc(exp_dir, level, writer) if run == paths.TICKET_RUN else None
      if lmc is not None:  # --lmc_every_level (Frankle et al. 2020)
        row["instability"] = lmc["instability"]
        row["connected_fraction"] = lmc["connected_fraction"]
      out.append(row)
  return out


def _wall_seconds(exp_dir: str, level: int, runs: List[str],
                  writer: store.Writer) -> float:
  """The level's whole wall time: its ticket and each of ``runs`` (and the
  LMC copy, under --lmc_every_level) it ran; runs that trained side by side
  (``stacked_runs``) started together, so they count as the longest of
  them, once."""
  total = stacked = 0.0
  for run in dict.fromkeys((paths.TICKET_RUN, *runs, "lmc")):
    m = _metrics(exp_dir, level, run, writer)
    if m is None:
      continue
    seconds = float(m.get("wall_seconds") or 0.0)
    if m.get("stacked_runs"):
      stacked = max(stacked, seconds)
    else:
      total += seconds
  return total + stacked


def duration(seconds: float) -> str:
  """``12.3 s``, ``1 min 30 s``, ``2 h 05 min``."""
  if seconds < 60:
    return f"{seconds:.1f} s"
  minutes, secs = divmod(int(round(seconds)), 60)
  if minutes < 60:
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"
  hours, minutes = divmod(minutes, 60)
  return f"{hours} h {minutes:02d} min"


def level_line(exp_dir: str, level: int, controls: List[str],
               writer: store.Writer = store.LOCAL, levels: int = None,
               eta_seconds: float = None) -> str:
  """``level 3/10  density 51.20%  ticket 94.40%  reinit 94.20%  ...
  12.3 s  ETA 1 min 30 s``: the level's accuracies (test, and validation
  where held out), its instability under --lmc_every_level, its whole
  wall time (ticket and branches) and, given, the time left."""
  t = _metrics(exp_dir, level, paths.TICKET_RUN, writer)
  name = f"level {level}" + (f"/{levels}" if levels is not None else "")
  if t is None:
    return f"{name}: not run"
  parts = [name, f"density {100 * t['density']:6.2f}%",
           f"ticket {100 * t['metrics']['test_accuracy']:.2f}%"]
  if "validation_accuracy" in t["metrics"]:
    parts.append(f"val {100 * t['metrics']['validation_accuracy']:.2f}%")
  for c in controls if level else ():
    m = _metrics(exp_dir, level, c, writer)
    if m is not None:
      parts.append(f"{c} {100 * m['metrics']['test_accuracy']:.2f}%")
  lmc = _lmc(exp_dir, level, writer)
  if lmc is not None:
    parts.append(f"instability {100 * lmc['instability']:.2f}%")
  parts.append(duration(_wall_seconds(exp_dir, level, controls, writer)))
  if eta_seconds is not None:
    parts.append(f"ETA {duration(eta_seconds)}")
  return "  ".join(parts)


def header(command: str, exp_dir: str, changed: Dict[str, Dict[str, object]],
           levels: int, done: List[int]) -> List[str]:
  """What a run prints first: the command and where its results go, the
  hparams that differ from the defaults, and the levels already done."""
  lines = [f"{command}: {exp_dir}"]
  items = [f"{k}={v}" for group in changed.values() for k, v in group.items()]
  if items:
    lines.append("  " + "  ".join(items))
  if done and len(done) == levels + 1:
    lines.append(f"  levels 0-{levels}: all done")
  elif done:
    lines.append(f"  levels 0-{levels}; done: {_spans(done)}")
  else:
    lines.append(f"  levels 0-{levels}")
  return lines


def _spans(numbers: List[int]) -> str:
  """``0-3, 5``."""
  out, run = [], [numbers[0]]
  for n in numbers[1:]:
    if n == run[-1] + 1:
      run.append(n)
    else:
      out.append(run)
      run = [n]
  out.append(run)
  return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0])
                   for r in out)


def write_summary(exp_dir: str, levels: int, controls: List[str],
                  writer: store.Writer = store.LOCAL) -> List[dict]:
  """Rewrites summary.json, summary.csv and accuracy_vs_density.png."""
  table = rows(exp_dir, levels, controls, writer)
  hparams = None
  hp_path = paths.hparams(exp_dir)
  if writer.exists(hp_path):
    hparams = writer.read_json(hp_path)
  writer.write_json(paths.summary(exp_dir),
                    {"rows": table, "provenance": hparams})
  if table:
    writer.write_csv(os.path.join(exp_dir, paths.SUMMARY_CSV), table,
                     first=("density", "level", "run"))
    plot_accuracy_vs_density(
        table, os.path.join(exp_dir, paths.PLOT),
        title=title(hparams) or os.path.basename(exp_dir.rstrip("/")),
        writer=writer)
  return table


_MODELS = {"lenet_300_100": "LeNet-300-100", "lenet5": "LeNet-5",
           "conv2": "Conv-2", "conv4": "Conv-4", "conv6": "Conv-6",
           "resnet18": "ResNet-18", "resnet20": "ResNet-20",
           "resnet50": "ResNet-50", "resnet56": "ResNet-56",
           "vgg11": "VGG-11", "vgg16": "VGG-16", "vgg19": "VGG-19"}
_DATASETS = {"mnist_5k": "MNIST (5k)", "mnist": "MNIST",
             "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
             "fashion_mnist": "Fashion-MNIST", "digits": "digits (8x8)",
             "svhn_cropped": "SVHN", "smallnorb": "SmallNORB",
             "places365_small": "Places365", "imagenet2012": "ImageNet",
             "imagenet_resized/32x32": "ImageNet 32x32",
             "imagenet_resized/64x64": "ImageNet 64x64"}


def model_name(model: str) -> str:
  """A model's name as a paper writes it: ``lenet_300_100`` -> LeNet-300-100."""
  return _MODELS.get(str(model), str(model))


_OPTIMIZERS = {"sgd": "SGD", "adam": "Adam"}
_SCORES = {"el2n": "EL2N", "grand": "GraNd"}


def optimizer_name(optimizer: str) -> str:
  """``sgd`` -> SGD, ``adam`` -> Adam."""
  return _OPTIMIZERS.get(str(optimizer), str(optimizer))


def score_name(score: str) -> str:
  """A data-diet score as Paul et al. write it: ``el2n`` -> EL2N."""
  return _SCORES.get(str(score), str(score))


def dataset_name(dataset: str) -> str:
  """A dataset's name as a paper writes it: ``mnist_5k`` -> MNIST (5k)."""
  return _DATASETS.get(str(dataset), str(dataset))


def _flat(provenance) -> dict:
  """Every leaf of a (nested) hparams dict by its last key; the first wins."""
  out = {}
  def walk(d):
    for k, v in d.items():
      if isinstance(v, dict):
        walk(v)
      else:
        out.setdefault(k, v)
  if isinstance(provenance, dict):
    walk(provenance)
  return out


def title(provenance) -> str:
  """A figure title in words from an experiment's hparams.json, e.g.
  ``LeNet-300-100 on MNIST (5k) — SGD lr 0.1, 15ep, global IMP 20%/level,
  rewind to 0it``; fields that are missing are left out ("" if none)."""
  f = _flat(provenance)
  head = ""
  model, data = f.get("model") or f.get("model_name"), f.get("dataset") or f.get(
      "dataset_name")
  if model:
    head = model_name(model)
  if data:
    head += (" on " if head else "") + dataset_name(data)
  recipe = []
  if f.get("optimizer"):
    recipe.append(optimizer_name(f["optimizer"])
                  + (f" lr {f['lr']:g}" if isinstance(f.get("lr"), (int, float))
                     else ""))
  if f.get("training_steps"):
    recipe.append(str(f["training_steps"]))
  frac = f.get("pruning_fraction")
  if isinstance(frac, (int, float)):
    strategy = f.get("pruning_strategy")
    recipe.append(f"{strategy + ' ' if strategy else ''}IMP "
                  f"{100 * frac:g}%/level")
  if f.get("rewind") not in (None, ""):
    recipe.append(f"rewind to {f['rewind']}")
  if recipe:
    head += (" — " if head else "") + ", ".join(recipe)
  return head


def plot_accuracy_vs_density(table: List[dict], path: str, title: str = "",
                             metric: str = "test_accuracy",
                             writer: store.Writer = store.LOCAL) -> None:
  """Accuracy vs fraction of weights remaining (log x), one line per run."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  import matplotlib.ticker  # pylint: disable=g-import-not-at-top
  plt = figures.pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  dense = [r for r in table if r["level"] == 0 and r["run"] == "ticket"]
  runs = list(dict.fromkeys(["ticket", *(r["run"] for r in table)]))
  for i, run in enumerate(runs):
    pts = sorted(((r["density"], r[metric], r.get(f"{metric}_std"))
                  for r in table
                  if r["run"] == run or (run != "ticket" and r in dense)),
                 reverse=True, key=lambda p: p[0])
    if len(pts) < (2 if run != "ticket" else 1):
      continue
    style, color = STYLES.get(run, ("d-.", f"C{4 + i}"))
    xs, ys = [100 * p[0] for p in pts], [100 * p[1] for p in pts]
    ax.plot(xs, ys, style, color=color, label=run.replace("_", " "))
    stds = [None if p[2] in (None, "") else float(p[2]) for p in pts]
    if any(s is not None for s in stds):  # replicates: error bars
      ax.errorbar(xs, ys, yerr=[100 * (s or 0.0) for s in stds], fmt="none",
                  ecolor=color, capsize=3, alpha=0.8)
  if dense and dense[0].get(metric) is not None:
    ax.axhline(100 * dense[0][metric], color="0.4", linestyle="--",
               linewidth=1, label="dense")
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
  figures.save_figure(fig, path, writer, dpi=120)
