"""``lottery_tf train``: one dense training run, resumable by its output."""
import os
import time

from lottery_tf.foundations import fs
from lottery_tf.foundations import hparams as hp_lib, provenance, store
from lottery_tf.lottery.task import Task, validate  # noqa: F401
from lottery_tf import training


def run(exp_dir: str, dhp, mhp, thp, *, quiet: bool = False,
        writer: store.Writer = store.LOCAL) -> str:
  metrics_path = os.path.join(exp_dir, "metrics.json")
  if fs.exists(metrics_path):
    print(f"already finished: {metrics_path}")
    return metrics_path
  task = Task(dhp, mhp, thp)
  training.set_seed(thp.seed)
  with task.scope():
    model = task.build_model()
    train_model = training.compile_model(model, thp, task.steps_per_epoch)
  began = time.time()
  result = training.fit(
      train_model, task.train_data(), steps_per_epoch=task.steps_per_epoch,
      start_step=0, end_step=task.total_steps,
      verbose=training.verbosity(quiet))
  metrics = training.evaluate(train_model, task.eval_data())
  summary = {
      "command": "train",
      "hparams": hp_lib.to_json_dict(dhp, mhp, thp),
      "seed": thp.seed,
      "versions": provenance.library_versions(),
      "data": task.info.to_dict(),
      "num_parameters": int(sum(int(v.shape.num_elements())
                                for v in model.trainable_variables)),
      "steps": task.total_steps,
      "steps_per_epoch": task.steps_per_epoch,
      "ms_per_step": result.ms_per_step,
      "wall_seconds": time.time() - began,
      "metrics": metrics,
      "history": {k: [float(x) for x in v]
                  for k, v in result.history.items()},
  }
  if not writer.redirected:
    from lottery_tf import paths  # pylint: disable=g-import-not-at-top
    from lottery_tf.foundations import tensorboard  # pylint: disable=g-import-not-at-top
    tensorboard.write_run_scalars(
        os.path.join(paths.tensorboard(exp_dir), "train"), summary["history"])
  writer.write_json(metrics_path, summary)
  print(f"dense {mhp.model} on {dhp.dataset}: "
        + " ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
        + f" ({result.ms_per_step:.2f} ms/step)")
  return metrics_path
