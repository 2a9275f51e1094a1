"""Per-example quantities over a whole split, in example-index order.

One forward pass (inference mode: BatchNorm uses its moving statistics, no
augmentation) gives each example's cross-entropy loss, whether it is
classified correctly and its EL2N score; ``grad_norms`` gives GraNd. Arrays
are indexed by the example index of ``data.load(..., with_index=True)``.
"""
import weakref
from typing import Dict

import numpy as np

from lottery_tf._keras import keras, tf

_FORWARD = weakref.WeakKeyDictionary()
_GRADIENT = weakref.WeakKeyDictionary()


def el2n(logits, labels) -> np.ndarray:
  """||softmax(logits) - onehot(labels)||_2 per row (NumPy, for any input).

  0 for a perfectly confident correct prediction, sqrt(2) for a perfectly
  confident wrong one, at most sqrt(2) always.
  """
  logits = np.asarray(logits, np.float64)
  labels = np.asarray(labels).astype(np.int64)
  z = logits - logits.max(axis=-1, keepdims=True)
  p = np.exp(z)
  p /= p.sum(axis=-1, keepdims=True)
  p[np.arange(len(labels)), labels] -= 1.0
  return np.sqrt((p * p).sum(axis=-1))


def _forward(model: keras.Model):
  fn = _FORWARD.get(model)
  if fn is None:
    num_classes = int(model.outputs[0].shape[-1])

    @tf.function(reduce_retracing=True)
    def fn(images, labels):
      logits = tf.cast(model(images, training=False), tf.float32)
      labels = tf.cast(labels, tf.int32)
      probs = tf.nn.softmax(logits)
      diff = probs - tf.one_hot(labels, num_classes)
      return {
          "loss": tf.nn.sparse_softmax_cross_entropy_with_logits(
              labels=labels, logits=logits),
          "correct": tf.cast(
              tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels),
              tf.float32),
          "el2n": tf.norm(diff, axis=-1),
      }
    _FORWARD[model] = fn
  return fn


def _gradient_norms(model: keras.Model):
  fn = _GRADIENT.get(model)
  if fn is None:
    @tf.function(reduce_retracing=True)
    def fn(images, labels):
      variables = model.trainable_variables
      with tf.GradientTape() as tape:
        logits = tf.cast(model(images, training=False), tf.float32)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(labels, tf.int32), logits=logits)
      # One gradient per example (vectorised by pfor), then its norm over
      # every trainable weight.
      jacobians = tape.jacobian(losses, variables,
                                experimental_use_pfor=True)
      squares = tf.add_n([
          tf.reduce_sum(tf.reshape(tf.square(j), [tf.shape(j)[0], -1]), 1)
          for j in jacobians if j is not None])
      return {"grand": tf.sqrt(squares)}
    _GRADIENT[model] = fn
  return fn


def _collect(fn, dataset, num_examples: int) -> Dict[str, np.ndarray]:
  out: Dict[str, np.ndarray] = {}
  seen = np.zeros(num_examples, bool)
  labels = np.full(num_examples, -1, np.int64)
  for images, batch_labels, index in dataset:
    values = fn(images, batch_labels)
    idx = index.numpy()
    for key, value in values.items():
      if key not in out:
        out[key] = np.zeros(num_examples, np.float32)
      out[key][idx] = value.numpy()
    labels[idx] = batch_labels.numpy()
    seen[idx] = True
  if not seen.all():
    raise ValueError(f"the dataset yielded {int(seen.sum())} of "
                     f"{num_examples} examples")
  out["labels"] = labels
  return out


def stats(model: keras.Model, dataset, num_examples: int
          ) -> Dict[str, np.ndarray]:
  """``loss``, ``correct`` (0/1), ``el2n`` and ``labels`` per example.

  ``dataset`` yields ``(images, labels, index)`` batches covering indices
  0..num_examples-1 (``data.load(hp, split, with_index=True)``).
  """
  return _collect(_forward(model), dataset, num_examples)


def grad_norms(model: keras.Model, dataset, num_examples: int
               ) -> Dict[str, np.ndarray]:
  """``grand`` (per-example gradient norm of the loss) and ``labels``.

  Keep the batches small (~32): the per-example gradients of a batch are
  held in memory at once.
  """
  return _collect(_gradient_norms(model), dataset, num_examples)
