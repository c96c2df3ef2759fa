"""Why chapters 03-04 are slower on JAX: MobileNet's training and inference speed per backend.

    python benchmarks/mobilenet_step.py                        # TensorFlow
    KERAS_BACKEND=jax python benchmarks/mobilenet_step.py      # JAX
    XLA_FLAGS=--xla_cpu_use_onednn=true KERAS_BACKEND=jax python benchmarks/mobilenet_step.py

Times chapter 04's fine-tuning model (MobileNet alpha 0.25 at 96x96, BatchNormalization frozen,
a Dense head) on 1,280 images in batches of 64: one fit() epoch and one predict(), each after a
warm-up call that traces and compiles, so compilation is not counted. Random weights and
pixels: only the arithmetic matters here, and it does not depend on their values. Then the same
for chapter 03's scratch CNN (plain convolutions, no depthwise ones), for comparison.
Run it alone on the machine: other processes on the same cores distort the timings.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402
from scratch_seeds import scratch_cnn  # noqa: E402  (this folder is on sys.path when run as a script)

IMAGES, BATCH = 1280, 64


def mobilenet_model() -> keras.Model:
    """Chapter 04's fine-tuning model, base trainable and its BatchNormalization frozen."""
    base = keras.applications.MobileNet(input_shape=(96, 96, 3), alpha=0.25, include_top=False,
                                        weights=None, pooling="avg")
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    inputs = keras.Input(shape=(96, 96, 3))
    x = layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    outputs = layers.Dense(8, activation="softmax")(base(x, training=False))
    return keras.Model(inputs, outputs)


def seconds(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Seconds for one fit() epoch and one predict() over `images`, after warm-up calls."""
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(images[:2 * BATCH], labels[:2 * BATCH], batch_size=BATCH, verbose=0)
    model.predict(images[:BATCH], batch_size=BATCH, verbose=0)
    start = time.perf_counter()
    model.fit(images, labels, batch_size=BATCH, verbose=0)
    train = time.perf_counter() - start
    start = time.perf_counter()
    model.predict(images, batch_size=BATCH, verbose=0)
    return train, time.perf_counter() - start


def main() -> int:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(IMAGES, 96, 96, 3), dtype=np.uint8)
    labels = rng.integers(0, 8, size=IMAGES)
    print(f"backend {keras.backend.backend()}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, "
          f"{IMAGES:,} images of 96x96, batch {BATCH}")
    for name, build in (("MobileNet 0.25, fine-tuning", mobilenet_model),
                        ("scratch CNN (chapter 03)", lambda: scratch_cnn(8))):
        train, predict = seconds(build(), images, labels)
        print(f"{name:<30} fit epoch {train:6.2f} s   predict {predict:6.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
