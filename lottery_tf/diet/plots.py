"""Pictures of a scores file: the histogram and the easiest/hardest examples."""
import numpy as np

from lottery_tf import data
from lottery_tf.foundations import figures, store


def _pyplot():
  return figures.pyplot()


def _save(fig, path: str, writer: store.Writer) -> None:
  fig.tight_layout()
  figures.save_figure(fig, path, writer, dpi=110)


def histogram(scores: np.ndarray, labels: np.ndarray, path: str,
              score: str = "el2n", title: str = "",
              writer: store.Writer = store.LOCAL) -> None:
  """All scores, and per class as outlines."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 3.6))
  bins = np.linspace(float(scores.min()), float(scores.max()) + 1e-9, 41)
  ax.hist(scores, bins=bins, color="C0", alpha=0.35, label="all")
  classes = np.unique(labels)
  if len(classes) <= 10:
    for c in classes:
      ax.hist(scores[labels == c], bins=bins, histtype="step", lw=1,
              label=f"class {c}")
  ax.set_yscale("log")
  ax.set_xlabel(f"{score} score (ensemble mean)")
  ax.set_ylabel("training examples")
  ax.set_title(title, fontsize=8)
  ax.legend(fontsize=6, ncol=2)
  _save(fig, path, writer)


def easy_hard_grid(dhp, scores: np.ndarray, labels: np.ndarray, path: str,
                   score: str = "el2n", per_side: int = 16,
                   writer: store.Writer = store.LOCAL) -> None:
  """The ``per_side`` easiest (lowest score) and hardest training examples."""
  n = len(scores)
  per_side = min(per_side, n)
  order = np.lexsort((np.arange(n), scores))
  easy, hard = order[:per_side], order[::-1][:per_side]
  wanted = np.unique(np.concatenate([easy, hard]))
  # Un-normalised pixels in [0, 1], as a person would look at them.
  view = dhp.replace(normalize=False, augment=False)
  images = {}
  for x, _, index in data.load(view, "train", batch_size=len(wanted),
                               indices=wanted, with_index=True):
    for image, i in zip(x.numpy(), index.numpy()):
      images[int(i)] = np.clip(image, 0.0, 1.0)
  plt = _pyplot()
  cols = 8
  rows_per_side = -(-per_side // cols)
  fig, axes = plt.subplots(2 * rows_per_side, cols,
                           figsize=(cols * 1.15, 2 * rows_per_side * 1.35 + 0.4),
                           squeeze=False)
  for side, (name, idx) in enumerate((("easiest", easy), ("hardest", hard))):
    for k in range(rows_per_side * cols):
      ax = axes[side * rows_per_side + k // cols][k % cols]
      ax.axis("off")
      if k >= len(idx):
        continue
      i = int(idx[k])
      image = images[i]
      if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
      else:
        ax.imshow(image)
      ax.set_title(f"#{i} y={labels[i]}\n{scores[i]:.3f}", fontsize=6)
    axes[side * rows_per_side][0].text(
        -0.15, 1.35, f"{name} ({score})", transform=axes[side *
                                                          rows_per_side][0].transAxes,
        fontsize=8, fontweight="bold")
  _save(fig, path, writer)
