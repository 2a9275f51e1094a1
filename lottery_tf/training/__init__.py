"""Optimizers, lr schedules, the masked train step and the fit wrapper."""
from lottery_tf.training import durations, optimizers
from lottery_tf.training.model import (StackedTrainModel, TrainModel, kernels,
                                       mask_pairs)
from lottery_tf.training.train import (FitResult, can_stack, compile_model,
                                       compile_stacked, copy_name, evaluate, fit,
                                       repeating, set_seed, total_steps,
                                       verbosity)
