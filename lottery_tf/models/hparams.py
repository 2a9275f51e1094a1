"""ModelHparams: which network (the registry's name)."""
import dataclasses

from lottery_tf.foundations.hparams import Hparams, field


@dataclasses.dataclass(frozen=True)
class ModelHparams(Hparams):
  group = "model"
  model: str = field(
      "lenet_300_100", "Model name (see `lottery_tf list`).", always_hashed=True)
