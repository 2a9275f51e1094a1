"""The source x target grid of Morcos et al. 2019, with optimizer transfer.

For each source dataset and source optimizer, IMP finds tickets (``find``);
each ticket of the chosen levels is transferred to each target with each
target optimizer (``transfer``), with replicates; the targets' own tickets,
random tickets and dense networks are the controls. Everything is a normal
find/transfer experiment under OUTPUT_DIR, so a re-run resumes and other
commands reuse what the grid computed.
"""
import collections
import dataclasses
import itertools
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from lottery_tf import descriptions, paths, tickets
from lottery_tf.foundations import figures, fs, provenance, store
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.lottery import report
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf.lottery.task import Task
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf.transfer.hparams import (GridHparams, TransferHparams,
                                        parse_datasets, split_list)
from lottery_tf.transfer.runner import TransferRunner

def label(spec: Tuple[str, str]) -> str:
  name, classes = spec
  return f"{name}[{classes}]" if classes else name


def words(dataset_label: str) -> str:
  """A grid label in words, for figures: ``mnist_5k[0-4]`` -> ``MNIST (5k)
  0-4``."""
  m = re.fullmatch(r"(.+?)\[(.+)\]", dataset_label)
  name, classes = (m.group(1), m.group(2)) if m else (dataset_label, "")
  return report.dataset_name(name) + (f" {classes}" if classes else "")


def recipe(thp: TrainingHparams, ghp: GridHparams, optimizer: str
           ) -> TrainingHparams:
  if optimizer == "sgd":
    return thp.replace(optimizer="sgd", lr=ghp.sgd_lr,
                       momentum=ghp.sgd_momentum)
  return thp.replace(optimizer="adam", lr=ghp.adam_lr, momentum=0.0,
                     nesterov=False)


@dataclasses.dataclass(frozen=True)
class Cell:
  """One transfer of the grid: a source's ticket to a target, one replicate."""
  source: Tuple[str, str]
  source_optimizer: str
  level: int
  target: Tuple[str, str]
  target_optimizer: str
  replicate: int

  @property
  def find(self) -> Tuple[Tuple[str, str], str]:
    """The find whose tickets this cell transfers."""
    return self.source, self.source_optimizer

  @property
  def ticket(self) -> Tuple[Tuple[str, str], str, int]:
    return self.source, self.source_optimizer, self.level

  def training(self, thp: TrainingHparams, ghp: GridHparams
               ) -> TrainingHparams:
    """The target optimizer's recipe, its seed offset by the replicate."""
    thp = recipe(thp, ghp, self.target_optimizer)
    return thp.replace(seed=thp.seed + self.replicate)

  @property
  def controls(self) -> str:
    """The first replicate runs every control; the others, the random one."""
    return ("own_ticket,random_ticket,dense" if self.replicate == 0
            else "random_ticket")

  def name(self, model: str) -> str:
    return (f"transfer_{model}_{label(self.source)}_{self.source_optimizer}_l"
            f"{self.level:02d}_to_{label(self.target)}_"
            f"{self.target_optimizer}")

  def records(self, summary: dict) -> List[dict]:
    """One record per run; the own ticket and dense runs are the target's."""
    out = []
    for kind, m in summary["runs"].items():
      sourced = kind in ("transfer", "random_ticket")
      out.append({
          "kind": kind,
          "source": label(self.source if sourced else self.target),
          "source_optimizer": (self.source_optimizer if sourced
                               else self.target_optimizer),
          "target": label(self.target),
          "target_optimizer": self.target_optimizer,
          "level": self.level if kind != "dense" else 0,
          "density": m["density"],
          "accuracy": m["metrics"]["test_accuracy"],
          "replicate": self.replicate})
    return out

  def describe(self, run: dict) -> str:
    return (f"{label(self.source)} ({self.source_optimizer}) level "
            f"{self.level:02d} -> {label(self.target)} "
            f"({self.target_optimizer}) seed+{self.replicate}: "
            f"{100 * run['metrics']['test_accuracy']:.2f}% at "
            f"{100 * run['density']:.1f}% of weights")


def cells(ghp: GridHparams, sources: List[Tuple[str, str]],
          targets: List[Tuple[str, str]], levels: List[int]) -> List[Cell]:
  """The grid in run order: source optimizer, source, level, target, target
  optimizer, replicate (so each find's transfers follow it)."""
  return [Cell(src, so, level, tgt, to, r) for so, src, level, tgt, to, r in
          itertools.product(split_list(ghp.source_optimizers), sources,
                            levels, targets,
                            split_list(ghp.target_optimizers),
                            range(ghp.replicates))]


class GridRunner:
  """Runs the grid resumably; writes grid.csv, grid.json, plots, heatmap."""

  def __init__(self, output_dir: str, base_dhp: DatasetHparams,
               mhp: ModelHparams, thp: TrainingHparams, php: PruningHparams,
               lhp: LotteryHparams, trhp: TransferHparams, ghp: GridHparams,
               *, quiet: bool = False, log=print,
               writer: store.Writer = store.LOCAL):
    ghp.validate(lhp.levels)
    php.validate()
    lhp.validate()
    trhp.validate()
    self.output_dir = output_dir
    self.base_dhp, self.mhp, self.thp = base_dhp, mhp, thp
    self.php, self.trhp, self.ghp = php, trhp, ghp
    self.lhp = lhp.replace(controls="")
    self.quiet, self.log, self.writer = quiet, log, writer
    self.sources = parse_datasets(ghp.sources, "sources")
    self.targets = parse_datasets(ghp.targets, "targets")
    # The sources' finds' flags, before any work.
    descriptions.Find(base_dhp, mhp, thp, php, self.lhp).validate()
    self.description = descriptions.Grid.of(
        base_dhp, mhp, thp, php, self.lhp, trhp, ghp)
    self.exp_dir = self.description.directory(output_dir)

  def _dhp(self, spec) -> DatasetHparams:
    return self.base_dhp.replace(dataset=spec[0], classes=spec[1])

  def find_description(self, spec, optimizer):
    """The source find of ``spec`` with ``optimizer`` (descriptions.Find)."""
    return descriptions.Find.of(
        self._dhp(spec), self.mhp, recipe(self.thp, self.ghp, optimizer),
        self.php, self.lhp)

  def find_source(self, spec, optimizer) -> str:
    task = Task(self._dhp(spec), self.mhp, recipe(self.thp, self.ghp,
                                                  optimizer))
    runner = self.find_description(spec, optimizer).runner(
            self.output_dir, task, quiet=self.quiet,
            log=lambda line: self.log(f"[{label(spec)} {optimizer}] " + line),
            writer=self.writer)
    runner.run()
    return runner.exp_dir

  def config(self) -> dict:
    """What rebuilds this runner in another process (a Ray task)."""
    return dict(output_dir=self.output_dir, base_dhp=self.base_dhp,
                mhp=self.mhp, thp=self.thp, php=self.php, lhp=self.lhp,
                trhp=self.trhp, ghp=self.ghp)

  def run(self) -> str:
    if self.ghp.executor == "ray":
      from lottery_tf.transfer import ray_grid  # pylint: disable=g-import-not-at-top
      return ray_grid.run(self)
    fs.makedirs(self.exp_dir)
    levels = self.ghp.levels(self.lhp.levels)
    records, finds, loaded = [], {}, {}
    for cell in cells(self.ghp, self.sources, self.targets, levels):
      if cell.find not in finds:  # once, before the find's first transfer
        finds[cell.find] = self.find_source(*cell.find)
      if cell.ticket not in loaded:  # only the current level's ticket held
        loaded = {cell.ticket: tickets.load(
            paths.ticket(finds[cell.find], cell.level))}
      records.extend(self.transfer(cell, loaded[cell.ticket])[0])
    return self.finish(records, levels)

  def finish(self, records: List[dict], levels: List[int]) -> str:
    """grid.csv, grid.json, the plots and the comparison, from every
    cell's records in cell order."""
    rows = aggregate(records)
    self._write(rows, levels)
    self.log(compare(rows))
    return os.path.join(self.exp_dir, "grid.json")

  def target_dhp(self, cell: Cell) -> DatasetHparams:
    return self._dhp(cell.target)

  def cell_trhp(self, cell: Cell) -> TransferHparams:
    return self.trhp.replace(transfer_controls=cell.controls)

  def transfer_runner(self, cell: Cell, ticket) -> TransferRunner:
    """The TransferRunner of one cell (``ticket``: its source's, at its
    level)."""
    return TransferRunner(
        self.output_dir, ticket, self.target_dhp(cell),
        cell.training(self.thp, self.ghp), self.cell_trhp(cell),
        prune_only=self.php.prune_only, quiet=self.quiet,
        name=cell.name(self.mhp.model), log=lambda line: None,
        writer=self.writer)

  def transfer(self, cell: Cell, ticket) -> Tuple[List[dict], str]:
    """Runs (or resumes) one cell's transfer; returns its records and its
    one-line summary (also logged)."""
    runner = self.transfer_runner(cell, ticket)
    summary = self.writer.read_json(runner.run())
    line = cell.describe(summary["runs"]["transfer"])
    self.log(line)
    return cell.records(summary), line

  def _write(self, rows: List[dict], levels: List[int]) -> None:
    self.writer.write_csv(os.path.join(self.exp_dir, "grid.csv"), rows,
                          first=tuple(rows[0]))
    heat_level = levels[-1] if self.ghp.heatmap_level < 0 else \
        self.ghp.heatmap_level
    plots = plot_grid(rows, self.exp_dir, heat_level, self.writer,
                      baseline=self.ghp.heatmap_baseline,
                      model=self.mhp.model)
    self.writer.write_json(os.path.join(self.exp_dir, "grid.json"), {
        "rows": rows, "comparison": compare(rows), "plots": plots, "heatmap_level": heat_level,
        "hparams": self.description.hparams_dict(),
        "versions": provenance.library_versions()})
    self.log(format_table(rows))
    for path in plots:
      self.log(f"plot: {path}")


KEY = ("kind", "source", "source_optimizer", "target", "target_optimizer",
       "level")


def aggregate(records: List[dict]) -> List[dict]:
  groups: Dict[tuple, List[dict]] = collections.OrderedDict()
  for rec in records:
    groups.setdefault(tuple(rec[k] for k in KEY), []).append(rec)
  rows = []
  for key, recs in groups.items():
    # The same control can be reached from several sources: count it once.
    seen = {}
    for rec in recs:
      seen[(rec["replicate"], rec["accuracy"], rec["density"])] = rec
    accs = np.array([r["accuracy"] for r in seen.values()])
    row = dict(zip(KEY, key))
    row.update(density=float(np.mean([r["density"] for r in seen.values()])),
               accuracy_mean=float(accs.mean()),
               # One replicate has no spread: none is claimed (an empty
               # cell in grid.csv, no error bar, no "± 0.00").
               accuracy_std=(float(accs.std(ddof=1)) if len(accs) > 1
                             else None),
               replicates=len(accs))
    rows.append(row)
  return rows


def compare(rows: List[dict]) -> str:
  """How transferred tickets fare against random tickets and own tickets."""
  idx = {}
  for r in rows:
    idx[(r["kind"], r["source"], r["source_optimizer"], r["target"],
         r["target_optimizer"], r["level"])] = r["accuracy_mean"]
  wins, n, vs_random, vs_own = 0, 0, [], []
  for (kind, src, so, tgt, to, lv), acc in idx.items():
    if kind != "transfer":
      continue
    rand = idx.get(("random_ticket", src, so, tgt, to, lv))
    own = idx.get(("own_ticket", tgt, to, tgt, to, lv))
    if rand is not None:
      n += 1
      wins += acc > rand
      vs_random.append(acc - rand)
    if own is not None:
      vs_own.append(acc - own)
  parts = []
  if n:
    parts.append(f"transferred tickets beat random tickets in {wins} of {n} "
                 f"cells (mean {100 * np.mean(vs_random):+.2f} pt)")
  if vs_own:
    parts.append(f"and are on average {100 * np.mean(vs_own):+.2f} pt from "
                 f"the target's own ticket")
  return " ".join(parts) or "no comparable cells"


def format_table(rows: List[dict]) -> str:
  lines = [f"{'kind':<14}{'source':<18}{'target':<18}{'opt':<11}{'level':>5}"
           f"{'density':>9}{'accuracy':>16}"]
  for r in rows:
    opt = f"{r['source_optimizer']}>{r['target_optimizer']}"
    spread = ("" if r["accuracy_std"] is None
              else f" ± {100 * r['accuracy_std']:.2f}")
    lines.append(f"{r['kind']:<14}{r['source']:<18}{r['target']:<18}{opt:<11}"
                 f"{r['level']:>5}{100 * r['density']:>8.1f}%"
                 f"{100 * r['accuracy_mean']:>9.2f}{spread}")
  return "\n".join(lines)


def plot_grid(rows: List[dict], out_dir: str, heat_level: int,
              writer: store.Writer = store.LOCAL,
              baseline: str = "random_ticket", model: str = "") -> List[str]:
  """One accuracy-vs-density plot per target, and the heatmap (relative to
  ``baseline``'s accuracy, or plain accuracy with ``"none"``); titles name
  ``model`` and the datasets in words."""
  figures.pyplot()  # the backend, before any figure
  model = report.model_name(model) if model else ""
  paths = [_plot_target(rows, target, to, out_dir, writer, model)
           for target, to in
           sorted({(r["target"], r["target_optimizer"]) for r in rows})]
  heat = [r for r in rows
          if r["kind"] == "transfer" and r["level"] == heat_level]
  if heat:
    base = ([] if baseline == "none" else
            [r for r in rows if r["kind"] == baseline
             and r["level"] == heat_level])
    paths.append(_plot_heatmap(heat, out_dir, heat_level, writer,
                               baseline if base else "none", base, model))
  return paths


def _plot_target(rows: List[dict], target: str, to: str, out_dir: str,
                 writer: store.Writer, model: str = "") -> str:
  """Accuracy vs density on one target (optimizer): each source's tickets,
  the controls and the dense network."""
  plt = figures.pyplot()
  mine = [r for r in rows if r["target"] == target
          and r["target_optimizer"] == to]
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for (_, name), pts in sorted(_curves(mine, target).items()):
    xs, ys, es = _curve(pts)
    style = {"random ticket": ("^:", "0.45"),
             f"{words(target)}'s own ticket": ("s--", "k")}.get(name, ("o-", None))
    ax.errorbar(xs, ys, yerr=es, fmt=style[0], color=style[1], label=name,
                capsize=2)
  for r in mine:
    if r["kind"] == "dense":
      ax.axhline(100 * r["accuracy_mean"], color="gray", lw=1, ls="-.",
                 label="dense")
  _density_axis(ax, mine)
  ax.set_ylabel("test accuracy (%)")
  replicates = max(r.get("replicates") or 1 for r in mine)
  ax.set_title(
      f"{model + ' tickets' if model else 'Tickets'} trained on "
      f"{words(target)} with {report.optimizer_name(to)}"
      + (f"\nmean ± std of {replicates} replicates" if replicates > 1
         else ""), fontsize=10)
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  path = os.path.join(out_dir, f"transfer_to_{_safe(target)}_{to}.png")
  figures.save_figure(fig, path, writer, dpi=120)
  return path


def _curves(mine: List[dict], target: str) -> Dict[tuple, List[dict]]:
  """One target's rows by curve, keyed (is a control, legend name)."""
  curves = collections.OrderedDict()
  for r in mine:
    if r["kind"] == "transfer":
      name = (f"from {words(r['source'])} "
              f"({report.optimizer_name(r['source_optimizer'])})")
    elif r["kind"] == "own_ticket":
      name = f"{words(target)}'s own ticket"
    elif r["kind"] == "random_ticket":
      name = "random ticket"
    else:
      continue
    curves.setdefault((r["kind"] != "transfer", name), []).append(r)
  return curves


def _curve(pts: List[dict]) -> Tuple[List[float], List[float],
                                     Optional[List[float]]]:
  """A curve's points, one per level: density, accuracy and its std (%;
  NaN at a level with one replicate, None if no level has more)."""
  by_level = collections.defaultdict(list)
  for p in pts:
    by_level[p["level"]].append(p)
  xs, ys, es = [], [], []
  for lv in sorted(by_level):
    ps = by_level[lv]
    xs.append(100 * np.mean([p["density"] for p in ps]))
    ys.append(100 * np.mean([p["accuracy_mean"] for p in ps]))
    stds = [p["accuracy_std"] for p in ps if p["accuracy_std"] is not None]
    es.append(100 * np.mean(stds) if stds else float("nan"))
  return xs, ys, (None if all(np.isnan(es)) else es)


def _density_axis(ax, mine: List[dict]) -> None:
  """A log density axis, decreasing, with one tick per level (the runs of a
  level differ by a few weights)."""
  import matplotlib.ticker  # pylint: disable=g-import-not-at-top
  ax.set_xscale("log")
  ax.invert_xaxis()
  per_level = collections.defaultdict(list)
  for r in mine:
    per_level[r["level"]].append(100 * r["density"])
  ticks = sorted({round(float(np.mean(v)), 1) for v in per_level.values()},
                 reverse=True)
  ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
  ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
  ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
  ax.set_xlabel("weights remaining (%)")


def _plot_heatmap(heat: List[dict], out_dir: str, heat_level: int,
                  writer: store.Writer, baseline: str = "none",
                  base: Sequence[dict] = (), model: str = "") -> str:
  """Source (optimizer) x target (optimizer) at one level: transfer accuracy
  minus ``baseline``'s (points, diverging colours centred at 0, the
  difference and the accuracy in each cell), or plain accuracy."""
  plt = figures.pyplot()
  srcs, tgts, acc = _heat_grid(heat)
  fig, ax = plt.subplots(figsize=(max(4.8, 2.2 + 1.5 * len(tgts)),
                                  1.6 + 0.6 * len(srcs)))
  density = 100 * np.mean([r["density"] for r in heat])
  if baseline == "none":
    im = ax.imshow(acc, cmap="viridis", aspect="auto")
    _annotate(ax, acc)
    what = "test accuracy (%)"
  else:
    diff = acc - _baseline_grid(base, baseline, srcs, tgts)
    span = float(np.nanmax(np.abs(diff))) if np.isfinite(diff).any() else 1.0
    span = max(span, 0.5)
    im = ax.imshow(diff, cmap="RdBu", vmin=-span, vmax=span, aspect="auto")
    for i in range(diff.shape[0]):
      for j in range(diff.shape[1]):
        if np.isfinite(diff[i, j]):
          strong = abs(diff[i, j]) > 0.6 * span
          ax.text(j, i, f"{diff[i, j]:+.1f}\n({acc[i, j]:.1f}%)",
                  ha="center", va="center", fontsize=8,
                  color="w" if strong else "k")
    what = ("transfer minus " + baseline.replace("_", " ")
            + " (test accuracy, points)")
  ax.set_xticks(range(len(tgts)), [f"{words(t)}\n({report.optimizer_name(o)})"
                                   for t, o in tgts], fontsize=8)
  ax.set_yticks(range(len(srcs)), [f"{words(s)} ({report.optimizer_name(o)})"
                                   for s, o in srcs], fontsize=8)
  ax.set_xlabel("target (optimizer)")
  ax.set_ylabel("source ticket (optimizer)")
  ax.set_title(f"{model + ' tickets: ' if model else ''}{what}\n"
               f"level {heat_level}, {density:.1f}% of weights remaining",
               fontsize=9)
  fig.colorbar(im, ax=ax, fraction=0.046)
  fig.tight_layout()
  path = os.path.join(out_dir, f"heatmap_level{heat_level:02d}.png")
  figures.save_figure(fig, path, writer, dpi=120)
  return path


def _heat_grid(heat: List[dict]) -> Tuple[list, list, np.ndarray]:
  """The heatmap's sources, targets and accuracies (%, NaN where none)."""
  srcs = sorted({(r["source"], r["source_optimizer"]) for r in heat})
  tgts = sorted({(r["target"], r["target_optimizer"]) for r in heat})
  grid = np.full((len(srcs), len(tgts)), np.nan)
  for r in heat:
    grid[srcs.index((r["source"], r["source_optimizer"])),
         tgts.index((r["target"], r["target_optimizer"]))] = \
        100 * r["accuracy_mean"]
  return srcs, tgts, grid


def _baseline_grid(base: Sequence[dict], baseline: str, srcs: list,
                   tgts: list) -> np.ndarray:
  """Each cell's baseline accuracy (%, NaN where none): a random ticket of
  the same source and optimizers, or the target's own ticket (it has no
  source: one per target and target optimizer)."""
  grid = np.full((len(srcs), len(tgts)), np.nan)
  for r in base:
    to = (r["target"], r["target_optimizer"])
    if to not in tgts:
      continue
    rows = (range(len(srcs)) if baseline == "own_ticket" else
            [i for i, s in enumerate(srcs)
             if s == (r["source"], r["source_optimizer"])])
    for i in rows:
      grid[i, tgts.index(to)] = 100 * r["accuracy_mean"]
  return grid


def _annotate(ax, grid: np.ndarray) -> None:
  """Each cell's accuracy, white below the mean, black above."""
  for i in range(grid.shape[0]):
    for j in range(grid.shape[1]):
      if not np.isnan(grid[i, j]):
        ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center",
                color="w" if grid[i, j] < np.nanmean(grid) else "k",
                fontsize=9)


def _safe(name: str) -> str:
  return re.sub(r"[^\w\-]+", "_", name).strip("_")
