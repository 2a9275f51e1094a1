"""The source x target grid of Morcos et al. 2019, with optimizer transfer.

For each source dataset and source optimizer, IMP finds tickets (``find``);
each ticket of the chosen levels is transferred to each target with each
target optimizer (``transfer``), with replicates; the targets' own tickets,
random tickets and dense networks are the controls. Everything is a normal
find/transfer experiment under OUTPUT_DIR, so a re-run resumes and other
commands reuse what the grid computed.
"""
import collections
import os
import re
from typing import Dict, List, Tuple

import numpy as np

from lottery_tf import artifacts, descriptions, fs, paths, tickets
from lottery_tf.hparams import DatasetHparams, ModelHparams, TrainingHparams
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf.lottery.task import Task
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf.transfer.hparams import (GridHparams, TransferHparams,
                                        parse_datasets, split_list)
from lottery_tf.transfer.runner import TransferRunner

def label(spec: Tuple[str, str]) -> str:
  name, classes = spec
  return f"{name}[{classes}]" if classes else name


def recipe(thp: TrainingHparams, ghp: GridHparams, optimizer: str
           ) -> TrainingHparams:
  if optimizer == "sgd":
    return thp.replace(optimizer="sgd", lr=ghp.sgd_lr,
                       momentum=ghp.sgd_momentum)
  return thp.replace(optimizer="adam", lr=ghp.adam_lr, momentum=0.0,
                     nesterov=False)


class GridRunner:
  """Runs the grid resumably; writes grid.csv, grid.json, plots, heatmap."""

  def __init__(self, output_dir: str, base_dhp: DatasetHparams,
               mhp: ModelHparams, thp: TrainingHparams, php: PruningHparams,
               lhp: LotteryHparams, trhp: TransferHparams, ghp: GridHparams,
               *, quiet: bool = False, log=print):
    ghp.validate(lhp.levels)
    php.validate()
    lhp.validate()
    trhp.validate()
    self.output_dir = output_dir
    self.base_dhp, self.mhp, self.thp = base_dhp, mhp, thp
    self.php, self.trhp, self.ghp = php, trhp, ghp
    self.lhp = lhp.replace(controls="")
    self.quiet, self.log = quiet, log
    self.sources = parse_datasets(ghp.sources, "sources")
    self.targets = parse_datasets(ghp.targets, "targets")
    # The sources' finds' flags, before any work.
    descriptions.Find(base_dhp, mhp, thp, php, self.lhp).validate()
    self.description = descriptions.Grid.of(
        base_dhp, mhp, thp, php, self.lhp, trhp, ghp)
    self.exp_dir = self.description.directory(output_dir)

  def _dhp(self, spec) -> DatasetHparams:
    return self.base_dhp.replace(dataset=spec[0], classes=spec[1])

  def find_source(self, spec, optimizer) -> str:
    task = Task(self._dhp(spec), self.mhp, recipe(self.thp, self.ghp,
                                                  optimizer))
    runner = descriptions.Find.of(
        task.dhp, task.mhp, task.thp, self.php, self.lhp).runner(
            self.output_dir, task, quiet=self.quiet,
            log=lambda line: self.log(f"[{label(spec)} {optimizer}] " + line))
    runner.run()
    return runner.exp_dir

  def run(self) -> str:
    fs.makedirs(self.exp_dir)
    levels = self.ghp.levels(self.lhp.levels)
    records = []
    for so in split_list(self.ghp.source_optimizers):
      for src in self.sources:
        find_dir = self.find_source(src, so)
        for level in levels:
          ticket = tickets.load(paths.ticket(find_dir, level))
          for tgt in self.targets:
            for to in split_list(self.ghp.target_optimizers):
              for r in range(self.ghp.replicates):
                thp = recipe(self.thp, self.ghp, to)
                thp = thp.replace(seed=thp.seed + r)
                controls = ("own_ticket,random_ticket,dense" if r == 0
                            else "random_ticket")
                runner = TransferRunner(
                    self.output_dir, ticket, self._dhp(tgt), thp,
                    self.trhp.replace(transfer_controls=controls),
                    prune_only=self.php.prune_only, quiet=self.quiet,
                    name=(f"transfer_{self.mhp.model}_{label(src)}_{so}_l"
                          f"{level:02d}_to_{label(tgt)}_{to}"),
                    log=lambda line: None)
                summary = artifacts.read_json(runner.run())
                for kind, m in summary["runs"].items():
                  records.append({
                      "kind": kind,
                      "source": label(src) if kind in (
                          "transfer", "random_ticket") else label(tgt),
                      "source_optimizer": so if kind in (
                          "transfer", "random_ticket") else to,
                      "target": label(tgt), "target_optimizer": to,
                      "level": level if kind != "dense" else 0,
                      "density": m["density"],
                      "accuracy": m["metrics"]["test_accuracy"],
                      "replicate": r})
                t = summary["runs"]["transfer"]
                self.log(f"{label(src)} ({so}) level {level:02d} -> "
                         f"{label(tgt)} ({to}) seed+{r}: "
                         f"{100 * t['metrics']['test_accuracy']:.2f}% at "
                         f"{100 * t['density']:.1f}% of weights")
    rows = aggregate(records)
    self._write(rows, levels)
    self.log(compare(rows))
    return os.path.join(self.exp_dir, "grid.json")

  def _write(self, rows: List[dict], levels: List[int]) -> None:
    artifacts.write_csv(os.path.join(self.exp_dir, "grid.csv"), rows,
                        first=tuple(rows[0]))
    heat_level = levels[-1] if self.ghp.heatmap_level < 0 else \
        self.ghp.heatmap_level
    plots = plot_grid(rows, self.exp_dir, heat_level)
    artifacts.write_json(os.path.join(self.exp_dir, "grid.json"), {
        "rows": rows, "comparison": compare(rows), "plots": plots, "heatmap_level": heat_level,
        "hparams": self.description.hparams_dict(),
        "versions": artifacts.library_versions()})
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
               accuracy_std=float(accs.std(ddof=1)) if len(accs) > 1 else 0.0,
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
    lines.append(f"{r['kind']:<14}{r['source']:<18}{r['target']:<18}{opt:<11}"
                 f"{r['level']:>5}{100 * r['density']:>8.1f}%"
                 f"{100 * r['accuracy_mean']:>9.2f} ± {100 * r['accuracy_std']:.2f}")
  return "\n".join(lines)


def plot_grid(rows: List[dict], out_dir: str, heat_level: int) -> List[str]:
  """One accuracy-vs-density plot per target, and the heatmap."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  plt = artifacts.pyplot()
  import matplotlib.ticker  # pylint: disable=g-import-not-at-top
  paths = []
  targets = sorted({(r["target"], r["target_optimizer"]) for r in rows})
  for target, to in targets:
    mine = [r for r in rows if r["target"] == target
            and r["target_optimizer"] == to]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    curves = collections.OrderedDict()
    for r in mine:
      if r["kind"] == "transfer":
        name = f"{r['source']} ({r['source_optimizer']}) ticket"
      elif r["kind"] == "own_ticket":
        name = f"{target} own ticket"
      elif r["kind"] == "random_ticket":
        name = "random ticket"
      else:
        continue
      curves.setdefault((r["kind"] != "transfer", name), []).append(r)
    for (is_control, name), pts in sorted(curves.items()):
      by_level = collections.defaultdict(list)
      for p in pts:
        by_level[p["level"]].append(p)
      xs, ys, es = [], [], []
      for lv in sorted(by_level):
        ps = by_level[lv]
        xs.append(100 * np.mean([p["density"] for p in ps]))
        ys.append(100 * np.mean([p["accuracy_mean"] for p in ps]))
        es.append(100 * np.mean([p["accuracy_std"] for p in ps]))
      style = {"random ticket": ("^:", "0.45"),
               f"{target} own ticket": ("s--", "k")}.get(name, ("o-", None))
      ax.errorbar(xs, ys, yerr=es, fmt=style[0], color=style[1], label=name,
                  capsize=2)
    for r in mine:
      if r["kind"] == "dense":
        ax.axhline(100 * r["accuracy_mean"], color="gray", lw=1, ls="-.",
                   label="dense")
    ax.set_xscale("log")
    ax.invert_xaxis()
    # One tick per level (the runs of a level differ by a few weights).
    per_level = collections.defaultdict(list)
    for r in mine:
      per_level[r["level"]].append(100 * r["density"])
    ticks = sorted({round(float(np.mean(v)), 1) for v in per_level.values()},
                   reverse=True)
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("weights remaining (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"target {target}, trained with {to}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, f"transfer_to_{_safe(target)}_{to}.png")
    artifacts.save_figure(fig, path, dpi=120)
    paths.append(path)
  # Heatmap: source (optimizer) x target (optimizer) at one level.
  cells = [r for r in rows if r["kind"] == "transfer" and r["level"] == heat_level]
  if cells:
    srcs = sorted({(r["source"], r["source_optimizer"]) for r in cells})
    tgts = sorted({(r["target"], r["target_optimizer"]) for r in cells})
    grid = np.full((len(srcs), len(tgts)), np.nan)
    for r in cells:
      grid[srcs.index((r["source"], r["source_optimizer"])),
           tgts.index((r["target"], r["target_optimizer"]))] = \
          100 * r["accuracy_mean"]
    fig, ax = plt.subplots(figsize=(max(4.8, 2.2 + 1.5 * len(tgts)),
                                    1.6 + 0.6 * len(srcs)))
    im = ax.imshow(grid, cmap="viridis", aspect="auto")
    for i in range(len(srcs)):
      for j in range(len(tgts)):
        if not np.isnan(grid[i, j]):
          ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center",
                  color="w" if grid[i, j] < np.nanmean(grid) else "k",
                  fontsize=9)
    ax.set_xticks(range(len(tgts)), [f"{t}\n({o})" for t, o in tgts],
                  fontsize=8)
    ax.set_yticks(range(len(srcs)), [f"{s} ({o})" for s, o in srcs],
                  fontsize=8)
    ax.set_xlabel("target")
    ax.set_ylabel("source ticket")
    density = 100 * np.mean([r["density"] for r in cells])
    ax.set_title(f"test accuracy (%), level {heat_level}\n"
                 f"({density:.1f}% of weights)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = os.path.join(out_dir, f"heatmap_level{heat_level:02d}.png")
    artifacts.save_figure(fig, path, dpi=120)
    paths.append(path)
  return paths


def _safe(name: str) -> str:
  return re.sub(r"[^\w\-]+", "_", name).strip("_")
