"""``lottery_tf diet``: the data-diet study in one resumable command.

1. Scores (EL2N or GraNd) of the training set, if an arm needs them and no
   --scores is given: the same experiment ``lottery_tf score`` writes, in
   OUTPUT_DIR, so either command reuses the other's work.
2. One IMP run per arm (--diet_arms), each from its own rewind point: ``init``
   (no pre-training, IMP rewinds to step 0), ``full`` (the dense network
   after --pretrain_steps on all the data), ``random:N``, ``easy:N``,
   ``hard:N`` (after --pretrain_steps on that subset); with the instability
   analysis at every level (--lmc_every_level).
3. A comparison of the arms: summary.json (one row per arm and level) and
   comparison.png (test accuracy, instability and linearly connected
   training examples against the weights remaining).

Layout:

  diet_<model>_<dataset>-<hash>/
    arm_full/, arm_random_0.1/, ...   IMP experiments (see lottery.runner)
    summary.json, summary.csv, comparison.png

The arms list is not in the hash: more arms (e.g. the per-arm CIFAR-10
presets, run one after the other) extend the same study, and the comparison
shows every arm that has run.
"""
import os
import re
import time
from typing import Callable, List

import numpy as np

from lottery_tf.foundations import fs
from lottery_tf import descriptions
from lottery_tf.foundations import figures, hparams as hp_lib, provenance, store
from lottery_tf.diet import scores as scores_lib, subsets
from lottery_tf.diet.hparams import ARMS
from lottery_tf.errors import UserError
from lottery_tf.training import durations

ARM_FILE = "arm.json"


def arm_dir(study_dir: str, arm: str) -> str:
  return os.path.join(study_dir, "arm_" + arm.replace(":", "_"))


def _spec(arm: str):
  return None if arm in ARMS else subsets.parse(arm, "--diet_arms")


def arm_hparams(lhp, arm: str, scores_path: str = ""):
  """The LotteryHparams of one arm of the study."""
  spec = _spec(arm)
  if arm == "init":
    return lhp.replace(pretrain_steps="0it", rewind="0it", pretrain_subset="",
                       pretrain_batch_size=0, pretrain_lr=0.0,
                       class_balanced=False, scores="", lmc_every_level=True)
  return lhp.replace(
      pretrain_subset="" if spec is None else arm,
      scores=scores_path if spec is not None and spec.needs_scores else "",
      class_balanced=lhp.class_balanced and spec is not None,
      lmc_every_level=True)


def validate(lhp, dihp) -> None:
  dihp.validate()
  if lhp.pretrain_subset:
    raise UserError("--pretrain_subset: diet sets it per arm; list the "
                    "subsets in --diet_arms instead")
  specs = [_spec(a) for a in dihp.arm_list()]
  steps = durations.parse(lhp.pretrain_steps, "--pretrain_steps")
  if any(s is not None for s in specs) and steps.value == 0:
    raise UserError("--pretrain_steps: must be positive for the subset arms "
                    f"of --diet_arms={dihp.diet_arms}")


def run(study_dir: str, output_dir: str, task, php, lhp, shp, dihp, *,
        quiet: bool = False, log: Callable[[str], None] = print,
        writer: store.Writer = store.LOCAL) -> str:
  """Runs (or resumes) every arm; returns the path of summary.json."""
  from lottery_tf.diet import pretrain  # pylint: disable=g-import-not-at-top
  from lottery_tf.lottery.runner import LotteryRunner  # pylint: disable=g-import-not-at-top
  validate(lhp, dihp)
  writer.write_json(os.path.join(study_dir, "hparams.json"), {
      "hparams": hp_lib.to_json_dict(task.dhp, task.mhp, task.thp, php, lhp,
                                     shp, dihp),
      "seed": task.thp.seed, "versions": provenance.library_versions(),
      "data": task.info.to_dict()})
  arms = dihp.arm_list()
  specs = {a: _spec(a) for a in arms}
  scores_path = lhp.scores
  if any(s is not None and s.needs_scores for s in specs.values()):
    if not scores_path:
      score_dir = descriptions.Score(task.dhp, task.mhp, task.thp,
                                     shp).directory(output_dir)
      log(f"scores: {score_dir}")
      scores_lib.compute(score_dir, task, shp, quiet=quiet, log=log,
                         writer=writer)
      scores_path = os.path.join(score_dir, scores_lib.SCORES_FILE)
  # Build every arm's runner first: bad input fails before any training.
  runners = []
  for arm in arms:
    arm_lhp = arm_hparams(lhp, arm, scores_path)
    runners.append((arm, LotteryRunner(
        arm_dir(study_dir, arm), task, php, arm_lhp,
        rewind_point=pretrain.plan(task, arm_lhp), writer=writer, quiet=quiet,
        log=lambda line, arm=arm: log(f"[{arm}] {line}"))))
  for arm, runner in runners:
    writer.write_json(os.path.join(runner.exp_dir, ARM_FILE),
                         {"arm": arm, "pretraining":
                          runner.pretraining.to_dict()
                          if runner.pretraining else None,
                          "rewind_step": runner.rewind_step})
    began = time.time()
    runner.run()
    log(f"[{arm}] done in {time.time() - began:.0f}s")
  return write_comparison(study_dir, writer)


def _arms_on_disk(study_dir: str) -> List[dict]:
  out = []
  for name in sorted(fs.listdir(study_dir)):
    path = os.path.join(study_dir, name, ARM_FILE)
    if name.startswith("arm_") and fs.exists(path):
      record = store.read_json(path)
      record["dir"] = os.path.join(study_dir, name)
      out.append(record)
  order = {"init": 0, "full": 1, "random": 2, "easy": 3, "hard": 4}
  out.sort(key=lambda r: (order.get(r["arm"].split(":")[0], 9), r["arm"]))
  return out


def _level_rows(arm: dict) -> List[dict]:
  rows = []
  for level in range(61):
    d = os.path.join(arm["dir"], f"level_{level:02d}")
    path = os.path.join(d, "metrics.json")
    if not fs.exists(path):
      continue
    m = store.read_json(path)
    row = {"arm": arm["arm"], "level": level, "density": m["density"],
           "test_accuracy": m["metrics"]["test_accuracy"],
           "train_accuracy": m["metrics"].get("train_accuracy"),
           "rewind_step": m.get("rewind_step")}
    lmc = m.get("lmc")
    if lmc:
      row.update(instability=lmc["instability"],
                 connected_fraction=lmc["connected_fraction"],
                 per_example_barrier_mean=lmc["per_example_barrier_mean"])
    for control in ("reinit", "random_mask"):
      cpath = os.path.join(d, control, "metrics.json")
      if fs.exists(cpath):
        row[f"{control}_test_accuracy"] = store.read_json(
            cpath)["metrics"]["test_accuracy"]
    rows.append(row)
  return rows


def write_comparison(study_dir: str,
                     writer: store.Writer = store.LOCAL) -> str:
  arms = _arms_on_disk(study_dir)
  rows = []
  per_arm = {}
  for arm in arms:
    arm_rows = _level_rows(arm)
    rows.extend(arm_rows)
    pre = None
    pre_path = os.path.join(arm["dir"], "pretrain", "metrics.json")
    if fs.exists(pre_path):
      pre = store.read_json(pre_path)
    dense = arm_rows[0]["test_accuracy"] if arm_rows else None
    # Matching (within 0.5 pt of the arm's own dense network): the fewest
    # weights at which IMP still matches.
    matching = [r["density"] for r in arm_rows
                if dense is not None and r["test_accuracy"] >= dense - 0.005]
    per_arm[arm["arm"]] = {
        "dir": arm["dir"], "pretraining": arm.get("pretraining"),
        "pretrained_metrics": (pre or {}).get("metrics"),
        "rewind_step": arm.get("rewind_step"),
        "dense_test_accuracy": dense,
        "lowest_matching_density": min(matching) if matching else None,
        "last_level": arm_rows[-1]["level"] if arm_rows else None,
    }
  summary = {"command": "diet", "arms": per_arm, "rows": rows}
  hp_path = os.path.join(study_dir, "hparams.json")
  if fs.exists(hp_path):
    summary["provenance"] = store.read_json(hp_path)
  if rows:
    writer.write_csv(os.path.join(study_dir, "summary.csv"), rows,
                        first=("arm", "density", "level"))
    plot_comparison(rows, os.path.join(study_dir, "comparison.png"),
                    title=_title(summary.get("provenance")), writer=writer)
  path = os.path.join(study_dir, "summary.json")
  writer.write_json(path, summary)
  return path


def arm_words(arm: str) -> str:
  """An arm in words: ``easy:0.1`` -> ``easiest 10%``."""
  if arm == "init":
    return "none (rewind to init)"
  if arm == "full":
    return "all the data"
  kind, _, size = arm.partition(":")
  kind = {"easy": "easiest", "hard": "hardest"}.get(kind, kind)
  try:
    value = float(size)
  except ValueError:
    return arm
  return f"{kind} {100 * value:g}%" if value < 1 else f"{kind} {int(value):,}"


def _title(provenance) -> str:
  """The comparison's title in words, from the study's hparams.json."""
  from lottery_tf.lottery import report  # pylint: disable=g-import-not-at-top
  hparams = (provenance or {}).get("hparams", {})
  flat = {k: v for group in hparams.values() if isinstance(group, dict)
          for k, v in group.items()}
  head = report.title({"hparams": {k: flat[k] for k in (
      "model", "dataset", "optimizer", "lr", "training_steps",
      "pruning_strategy", "pruning_fraction") if k in flat}})
  steps = str(flat.get("pretrain_steps") or "")
  steps = re.sub(r"^(\d+)it$", r"\1 steps", re.sub(r"^(\d+)ep$", r"\1 epochs",
                                                   steps))
  return head + (f"\nIMP from rewind points pre-trained {steps} on each "
                 "arm's data" if steps else "")


def plot_comparison(rows: List[dict], path: str, title: str = "",
                    writer: store.Writer = store.LOCAL) -> None:
  """Accuracy, instability and connected examples vs weights remaining."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  plt = figures.pyplot()
  panels = [("test_accuracy", "test accuracy (%)"),
            ("instability", "instability: test error barrier (%)"),
            ("connected_fraction", "train examples connected (%)")]
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
  arms = list(dict.fromkeys(r["arm"] for r in rows))
  for i, arm in enumerate(arms):
    mine = sorted((r for r in rows if r["arm"] == arm),
                  key=lambda r: -r["density"])
    for ax, (key, label) in zip(axes, panels):
      pts = [(100 * r["density"], 100 * r[key]) for r in mine
             if r.get(key) is not None]
      if pts:
        ax.plot(*zip(*pts), "o-", color=f"C{i}", label=arm_words(arm), ms=4)
      ax.set_ylabel(label)
    dense = [r for r in mine if r.get("level") == 0]
    if dense:  # the arm's dense network (its level 0), as a reference
      axes[0].axhline(100 * dense[0]["test_accuracy"], color=f"C{i}", lw=0.8,
                      ls=":", label="dense" if i == len(arms) - 1 else None)
  import matplotlib.ticker  # pylint: disable=g-import-not-at-top
  # One tick per level (arms differ by a few weights), at most about 8.
  per_level = {}
  for r in rows:
    per_level.setdefault(r.get("level", r["density"]), []).append(
        100 * r["density"])
  ticks = sorted({round(float(np.mean(v)), 1) for v in per_level.values()},
                 reverse=True)
  if len(ticks) > 8:
    ticks = ticks[::-(-len(ticks) // 8)]
  for ax in axes:
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("weights remaining (%)")
    ax.grid(True, which="both", alpha=0.3)
  axes[0].legend(fontsize=8, title="pre-training data", title_fontsize=8)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  figures.save_figure(fig, path, writer, dpi=110)


def comparison_lines(study_path: str) -> List[str]:
  """One line per arm: dense accuracy, the sparsest matching level."""
  summary = store.read_json(study_path)
  lines = []
  for arm in dict.fromkeys(r["arm"] for r in summary["rows"]):
    info = summary["arms"][arm]
    d = info.get("lowest_matching_density")
    dense = info.get("dense_test_accuracy")
    last = [r for r in summary["rows"] if r["arm"] == arm]
    if dense is None or not last:
      continue
    last = last[-1]
    line = (f"{arm:>14}: dense {100 * dense:.2f}%, level {last['level']} "
            f"({100 * last['density']:.1f}% of weights) "
            f"{100 * last['test_accuracy']:.2f}%")
    if last.get("instability") is not None:
      line += f", instability {100 * last['instability']:.2f}%"
    if d is not None:
      line += f"; matches dense down to {100 * d:.1f}%"
    lines.append(line)
  return lines
