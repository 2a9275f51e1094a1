"""Experiment directory names shared by every command that runs IMP.

`transfer` and `grid` find (or create) the same directory that
`lottery_tf find` would use for the same hparams, so a target's own ticket
is computed once and reused by whoever asks for it next.
"""
from lottery_tf import artifacts, hparams as hp_lib


def find_experiment_dir(output_dir: str, task, php, lhp, name: str = "") -> str:
  default = f"find_{task.mhp.model}_{task.dhp.dataset}"
  return artifacts.experiment_dir(
      output_dir, (name or default).replace("/", "_"),
      hp_lib.experiment_hash(task.dhp, task.mhp, task.thp, php, lhp,
                             extra={"command": "find"}))
