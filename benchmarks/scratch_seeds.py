"""How much chapter 03's 3-epoch scratch CNN depends on the seed (and on the backend).

    python benchmarks/scratch_seeds.py [--seeds 42 1 2 3 4] [--json FILE]
    KERAS_BACKEND=jax python benchmarks/scratch_seeds.py --seeds 42 1

Trains chapter 03's scratch CNN (same layers, Adam at 1e-3, batch 64, 3 epochs) once per seed
on the 8-class blood-cell split and prints, per seed, the test accuracy, the validation accuracy
after each epoch and the training seconds. The chapter quotes these numbers where it says that
one seeded run is one draw, and its checkpoints compare only what held in every run (the
frozen model's first epoch above the scratch CNN's first; the Dense head on frozen vectors
above the scratch CNN's test accuracy).
Run it alone on the machine if the seconds matter.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
from keras import layers  # noqa: E402

from helpers.data import load_blood_cells  # noqa: E402


def scratch_cnn(num_classes: int) -> keras.Model:
    """Chapter 03's baseline CNN for 96x96 RGB images (1,238,664 weights for 8 classes)."""
    return keras.Sequential([
        keras.Input(shape=(96, 96, 3)),
        layers.Rescaling(1 / 255),
        layers.Conv2D(32, 5, strides=2, padding="same", activation="relu"),
        layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Dense(128, activation="relu"),
        layers.Dense(num_classes, activation="softmax"),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3, 4])
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    cells = load_blood_cells(labels="8", image_size=96, crop=200)
    rows = []
    print(f"backend {keras.backend.backend()}")
    print(f"{'seed':>5}{'test acc.':>11}  {'val acc. per epoch':<22}{'seconds':>8}")
    for seed in args.seeds:
        keras.utils.set_random_seed(seed)
        model = scratch_cnn(len(cells.class_names))
        model.compile(optimizer=keras.optimizers.Adam(0.001),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        start = time.perf_counter()
        history = model.fit(cells.train_images, cells.train_labels, batch_size=64, epochs=3,
                            validation_data=(cells.val_images, cells.val_labels), verbose=0)
        seconds = time.perf_counter() - start
        _, test_accuracy = model.evaluate(cells.test_images, cells.test_labels, verbose=0)
        val = [round(float(v), 3) for v in history.history["val_accuracy"]]
        rows.append({"backend": keras.backend.backend(), "seed": seed,
                     "test_accuracy": round(float(test_accuracy), 4), "val_accuracy": val,
                     "seconds": round(seconds, 1)})
        print(f"{seed:>5}{test_accuracy:>11.3f}  {' '.join(f'{v:.3f}' for v in val):<22}"
              f"{seconds:>8.1f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
