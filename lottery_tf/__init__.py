"""lottery_tf: lottery tickets with rewinding, and their transfer, on Keras 2.

``import lottery_tf`` routes ``tf.keras`` to Keras 2 (tf_keras), the Keras
that tensorflow-model-optimization 0.8.1 works with; see ``_keras.py``.
"""
from lottery_tf._keras import keras, tf  # noqa: F401  (must come first)

__version__ = "0.1.0"
