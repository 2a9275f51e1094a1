"""TrainingHparams: the optimizer, its schedule, and how training runs."""
import dataclasses

from lottery_tf.foundations.hparams import Hparams, field

#: tf.distribute strategies by --strategy name (training/distribute.py).
STRATEGIES = ("default", "mirrored", "multi_worker", "one_device", "tpu")


@dataclasses.dataclass(frozen=True)
class TrainingHparams(Hparams):
  group = "training"
  optimizer: str = field("sgd", "`sgd` (with --momentum/--nesterov) or `adam`.",
                         choices=("sgd", "adam"))
  lr: float = field(0.1, "Peak learning rate.", interval="(0, inf)")
  momentum: float = field(0.0, "SGD momentum.", interval="[0, 1)")
  nesterov: bool = field(False, "Nesterov momentum (SGD).")
  weight_decay: float = field(
      0.0, "L2 penalty, coupled (added to the gradient) as PyTorch's SGD and "
      "Adam `weight_decay`; which weights it decays: --weight_decay_on.",
      interval="[0, inf)")
  weight_decay_on: str = field(
      "kernels", choices=("kernels", "all"), help= "What --weight_decay decays: `kernels` (conv/dense kernels "
      "only) or `all` (every trainable weight, biases and BatchNorm "
      "scale/offset included: PyTorch's `SGD(model.parameters(), "
      "weight_decay=...)`, as open_lth, Morcos et al., Mehta and the "
      "data-diet code apply it).")
  batch_size: int = field(128, "Global batch size.",
                          interval="[1, 2147483647]")
  training_steps: str = field(
      "10ep", "Training length: `160ep` (epochs) or `500it` (iterations).")
  lr_schedule: str = field(
      "constant", choices=("constant", "step"), help= "`constant` or `step` (multiply by --gamma at --milestones).")
  milestones: str = field(
      "", "Comma-separated durations for the step schedule, e.g. `80ep,120ep`.",
      many=True)
  gamma: float = field(0.1, "Step-schedule factor.", interval="(0, 1]")
  warmup_steps: str = field(
      "0it", "Linear lr warm-up from 0, as a duration (`5ep`, `500it`).")
  label_smoothing: float = field(0.0, "Label smoothing of the loss.",
                                 interval="[0, 1)")
  seed: int = field(0, "Seed for initialisation, data order and augmentation.",
                    interval="[0, 4294967295]")
  jit_compile: bool = field(
      False, "XLA-compile the train step.", affects_results=False)
  steps_per_execution: int = field(
      0, "Steps per tf.function call (0 = automatic).", affects_results=False)
  mixed_precision: str = field(
      "", choices=("", "mixed_float16", "mixed_bfloat16"), help= "`mixed_float16` (GPU) or `mixed_bfloat16` (TPU, recent CPUs): "
      "compute in half precision; weights, masks and pruning thresholds stay "
      "float32 (empty = float32 throughout).")
  strategy: str = field(
      "default", choices=STRATEGIES, help= "tf.distribute strategy: `default` (one device), `mirrored` "
      "(all local GPUs, or --cpu_devices), `multi_worker` (TF_CONFIG), "
      "`one_device` or `tpu` (--tpu). --batch_size is the global batch.",
      affects_results=False)
  cpu_devices: int = field(
      0, "Split the CPU into this many logical devices (0 = one), e.g. to run "
      "`--strategy=mirrored` on a machine without GPUs.",
      affects_results=False)
  tpu: str = field(
      "", "--strategy=tpu: the TPU name or grpc:// address (empty = the "
      "local TPU or $TPU_NAME).", affects_results=False)
  stack_runs: str = field(
      "auto", choices=("auto", "on", "off"), help="Train a level's ticket "
      "and its controls side by side, as one model in one compiled step "
      "(same numbers, to float tolerance; with them the lmc copy, on its own "
      "data order, and under --replicates every member's level): `on` "
      "wherever they fit in memory, "
      "`auto` where that is also faster (on a GPU; on a CPU only for models "
      "without convolutions, which are compute-bound there: "
      "benchmarks/levels.py), `off` one after another.",
      affects_results=False)
  checkpoint_every: int = field(
      0, "Checkpoint the model, masks and optimizer every N steps inside a "
      "run, so a killed run resumes mid-level (0 = only between runs).",
      affects_results=False)
