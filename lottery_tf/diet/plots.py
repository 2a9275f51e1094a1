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
  """The scores' distribution (one histogram, with its median and 10/90%
  marked), and below it one small histogram per class on the same bins
  (at most 10 classes; more are left out)."""
  import matplotlib.ticker  # pylint: disable=g-import-not-at-top
  plt = _pyplot()
  from lottery_tf.lottery import report  # pylint: disable=g-import-not-at-top
  name = report.score_name(score)
  classes = np.unique(labels)
  per_class = len(classes) <= 10
  bins = np.linspace(float(scores.min()), float(scores.max()) + 1e-9, 41)
  fig = plt.figure(figsize=(8, 5.6 if per_class else 3.6),
                   layout="constrained")
  grid = fig.add_gridspec(2 if per_class else 1, max(len(classes), 1)
                          if per_class else 1,
                          height_ratios=[2.2, 1] if per_class else None)
  ax = fig.add_subplot(grid[0, :])
  ax.hist(scores, bins=bins, color="C0")
  ax.set_yscale("log")
  ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  q10, q50, q90 = np.quantile(scores, [0.1, 0.5, 0.9])
  ax.axvline(q50, color="k", lw=1.2, label=f"median {q50:.3f}")
  ax.axvline(q10, color="k", lw=1, ls=":",
             label=f"10% / 90%: {q10:.3f} / {q90:.3f}")
  ax.axvline(q90, color="k", lw=1, ls=":")
  ax.legend(fontsize=8)
  ax.set_xlabel(f"{name} score (ensemble mean): low = easy, high = hard")
  ax.set_ylabel("training examples (log)")
  ax.set_title(title or f"{name} scores of {len(scores):,} training "
               "examples", fontsize=9)
  ax.grid(True, alpha=0.3)
  if per_class:
    first = None
    tallest = max(np.histogram(scores[labels == c], bins=bins)[0].max()
                  for c in classes)
    for k, c in enumerate(classes):
      sub = fig.add_subplot(grid[1, k], sharey=first)
      first = first or sub
      sub.hist(scores[labels == c], bins=bins, color="C1")
      sub.set_ylim(0, 1.05 * tallest)
      sub.axvline(np.median(scores[labels == c]), color="k", lw=0.8)
      sub.set_title(f"class {c}", fontsize=7)
      sub.tick_params(labelsize=6)
      sub.set_xticks([bins[0], bins[-1]])
      sub.tick_params(labelbottom=k == 0, labelleft=k == 0)
      if k == 0:
        sub.set_xticklabels([f"{bins[0]:.1f}", f"{bins[-1]:.1f}"])
    first.set_ylabel("per class\n(median: line)", fontsize=7)
  figures.save_figure(fig, path, writer, dpi=110)


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
