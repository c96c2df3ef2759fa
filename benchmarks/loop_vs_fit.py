"""Chapter 07's speed comparison, run long: an eager loop, a tf.function loop, an XLA loop and fit().

    python benchmarks/loop_vs_fit.py [--epochs 11] [--eager-epochs 4] [--batch-sizes 128 32]
                                     [--json benchmarks/results_loop_vs_fit.json]

The workload is chapter 07's: a Dense(256)-Dropout(0.5)-Dense(8) head trained with Adam on the
frozen MobileNet (alpha 0.25, 96 px) feature vectors of the 8,474 training blood cells, from the
same seed and on the same batches (one seeded, shuffled, endlessly repeated tf.data pipeline read
through a single iterator, `steps_per_epoch` batches per epoch). For each batch size, each way
trains a fresh head; the first epoch (tracing, XLA compilation) is reported apart and the median
of the later epochs is the "seconds per epoch". The eager loop's per-epoch time does not depend
on how many epochs it runs, so it runs fewer (--eager-epochs) to keep the benchmark short.

A second table times single training steps (batch of 128, median of 5 rounds of 20 steps) of
that head and of chapter 01's small CNN on Fashion-MNIST, as a plain graph and with XLA, each with
and without its dropout layer: on a CPU, XLA's slowness here comes mostly from generating the
dropout masks, not from the matrix products or convolutions.

Prints both tables and writes the numbers (every epoch's seconds, the test accuracies, the step
times) as JSON.
Run it alone on the machine: other processes on the same cores distort the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

from helpers.cache import cache_path, fetch, files_in_group  # noqa: E402
from helpers.data import load_blood_cells  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
SIGNATURE = [tf.TensorSpec(shape=[None, 256], dtype=tf.float32),
             tf.TensorSpec(shape=[None], dtype=tf.int64)]
WAYS = ("eager loop", "tf.function loop", "tf.function + XLA loop", "fit()")


def feature_vectors() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Frozen MobileNet vectors of the training and test cells, with their labels."""
    cells = load_blood_cells(labels="8", image_size=96, crop=200)
    (weights,) = files_in_group("mobilenet")
    fetch(weights)  # in the Keras cache and verified, or a clear error
    base = keras.applications.MobileNet(input_shape=(96, 96, 3), alpha=0.25, include_top=False,
                                        weights=str(cache_path(weights)), pooling="avg")

    def extract(images):
        batches = (tf.data.Dataset.from_tensor_slices(images).batch(256).map(
            lambda x: keras.applications.mobilenet.preprocess_input(tf.cast(x, tf.float32))))
        return base.predict(batches, verbose=0)

    return (extract(cells.train_images), cells.train_labels,
            extract(cells.test_images), cells.test_labels)


def build_head() -> keras.Model:
    return keras.Sequential([keras.Input(shape=(256,)), layers.Dense(256, activation="relu"),
                             layers.Dropout(0.5), layers.Dense(8)], name="head")


def make_dataset(features, labels, batch_size) -> tf.data.Dataset:
    return (tf.data.Dataset.from_tensor_slices((features, labels))
            .shuffle(len(features), seed=42).batch(batch_size).repeat()
            .prefetch(tf.data.AUTOTUNE))


def train_by_hand(model, dataset, epochs, steps_per_epoch, compile_step) -> list[float]:
    """Chapter 07's loop: the seconds of each epoch."""
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    optimizer.build(model.trainable_weights)
    loss_tracker = keras.metrics.Mean(name="loss")
    accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    def train_step(features, labels):
        with tf.GradientTape() as tape:
            logits = model(features, training=True)
            loss = LOSS(labels, logits)
        gradients = tape.gradient(loss, model.trainable_weights)
        optimizer.apply(gradients, model.trainable_weights)
        loss_tracker.update_state(loss, sample_weight=tf.shape(labels)[0])
        accuracy.update_state(labels, logits)

    step = compile_step(train_step) if compile_step else train_step
    batches = iter(dataset)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        loss_tracker.reset_state()
        accuracy.reset_state()
        for _ in range(steps_per_epoch):
            step(*next(batches))
        float(loss_tracker.result())  # wait for the epoch's last step, as fit()'s log does
        seconds.append(time.perf_counter() - start)
    return seconds


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def run_way(way, data, batch_size, epochs) -> dict:
    """Train a fresh head one way; return its epoch seconds and test accuracy."""
    train_features, train_labels, test_features, test_labels = data
    steps_per_epoch = int(np.ceil(len(train_features) / batch_size))
    keras.utils.set_random_seed(42)
    model = build_head()
    dataset = make_dataset(train_features, train_labels, batch_size)
    if way == "fit()":
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss=LOSS,
                      metrics=["accuracy"])
        timer = EpochTimer()
        model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, shuffle=False,
                  callbacks=[timer], verbose=0)
        seconds = timer.seconds
    else:
        compile_step = {
            "eager loop": None,
            "tf.function loop": lambda f: tf.function(f, input_signature=SIGNATURE),
            "tf.function + XLA loop": lambda f: tf.function(f, input_signature=SIGNATURE,
                                                            jit_compile=True),
        }[way]
        seconds = train_by_hand(model, dataset, epochs, steps_per_epoch, compile_step)
    predictions = keras.ops.convert_to_numpy(model(test_features)).argmax(axis=1)
    return {"epochs": epochs, "steps_per_epoch": steps_per_epoch,
            "epoch_seconds": [round(s, 4) for s in seconds],
            "first_epoch_seconds": round(seconds[0], 4),
            "seconds_per_epoch": round(statistics.median(seconds[1:]), 4),
            "test_accuracy": round(float(np.mean(predictions == test_labels)), 4)}


def step_milliseconds(model, x, y, jit_compile, rounds=5, steps=20) -> float:
    """Median wall milliseconds of one training step of `model` on the batch (x, y)."""
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    optimizer.build(model.trainable_weights)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(jit_compile=jit_compile)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        optimizer.apply(tape.gradient(loss, model.trainable_weights), model.trainable_weights)

    step(x, y)  # trace (and compile)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            step(x, y)
        times.append((time.perf_counter() - start) / steps * 1000)
    return statistics.median(times)


def xla_dropout_table(data) -> dict:
    """Step milliseconds, graph vs XLA, with and without dropout, for the head and chapter 01's CNN."""
    (images, labels), _ = keras.datasets.fashion_mnist.load_data()
    batches = {
        "chapter 07 head": (tf.constant(data[0][:128]), tf.constant(data[1][:128])),
        "chapter 01 CNN": (tf.constant(images[:128, ..., None].astype("float32") / 255),
                           tf.constant(labels[:128].astype("int64"))),
    }

    def build(name, dropout_rate):
        if name == "chapter 07 head":
            return keras.Sequential([keras.Input(shape=(256,)), layers.Dense(256, activation="relu"),
                                     layers.Dropout(dropout_rate), layers.Dense(8)])
        return keras.Sequential([  # chapter 01's CNN, with logits instead of softmax
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, 5, strides=2, padding="same", activation="relu"),
            layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
            layers.Flatten(), layers.Dropout(dropout_rate),
            layers.Dense(128, activation="relu"), layers.Dense(10)])

    table = {}
    print(f"\none training step, batch of 128 (ms)\n{'':<18}{'dropout':>8}{'graph':>8}{'XLA':>8}"
          f"{'XLA / graph':>13}")
    for name, (x, y) in batches.items():
        for dropout_rate in ((0.5, 0.0) if name == "chapter 07 head" else (0.3, 0.0)):
            row = {}
            for jit_compile in (False, True):
                keras.utils.set_random_seed(42)
                row["xla_ms" if jit_compile else "graph_ms"] = round(
                    step_milliseconds(build(name, dropout_rate), x, y, jit_compile), 3)
            row["xla_over_graph"] = round(row["xla_ms"] / row["graph_ms"], 2)
            table[f"{name}, dropout {dropout_rate}"] = row
            print(f"{name:<18}{dropout_rate:>8}{row['graph_ms']:>8.2f}{row['xla_ms']:>8.2f}"
                  f"{row['xla_over_graph']:>12.2f}x", flush=True)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/loop_vs_fit.py")
    parser.add_argument("--epochs", type=int, default=11,
                        help="epochs for fit() and the compiled loops (first = warm-up)")
    parser.add_argument("--eager-epochs", type=int, default=4,
                        help="epochs for the eager loop (first = warm-up)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 32])
    parser.add_argument("--skip-step-table", action="store_true",
                        help="skip the XLA-with/without-dropout step timings")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results_loop_vs_fit.json")
    args = parser.parse_args(argv)
    if min(args.epochs, args.eager_epochs) < 2:
        parser.error("--epochs and --eager-epochs must be at least 2 (one warm-up epoch + one timed)")

    start = time.perf_counter()
    data = feature_vectors()
    print(f"feature vectors in {time.perf_counter() - start:.1f} s; "
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs", flush=True)
    results = {}
    for batch_size in args.batch_sizes:
        rows = {way: run_way(way, data, batch_size,
                             args.eager_epochs if way == "eager loop" else args.epochs)
                for way in WAYS}
        fit_seconds = rows["fit()"]["seconds_per_epoch"]
        for row in rows.values():
            row["ratio_to_fit"] = round(row["seconds_per_epoch"] / fit_seconds, 3)
        results[str(batch_size)] = rows
        steps = rows["fit()"]["steps_per_epoch"]
        print(f"\nbatch size {batch_size} ({steps} steps per epoch)")
        print(f"{'':<24}{'epochs':>7}{'1st epoch s':>13}{'s / epoch':>11}{'vs fit()':>10}"
              f"{'test acc.':>11}")
        for way, row in rows.items():
            print(f"{way:<24}{row['epochs']:>7}{row['first_epoch_seconds']:>13.2f}"
                  f"{row['seconds_per_epoch']:>11.3f}{row['ratio_to_fit']:>9.2f}x"
                  f"{row['test_accuracy']:>11.3f}", flush=True)
    step_table = {} if args.skip_step_table else xla_dropout_table(data)
    machine = {"cpus": os.cpu_count(), "machine": platform.machine(),
               "python": platform.python_version(), "tensorflow": tf.__version__,
               "keras": keras.__version__}
    args.json.write_text(json.dumps({"machine": machine, "batch_sizes": results,
                                     "step_milliseconds": step_table}, indent=2) + "\n")
    shown = args.json.relative_to(ROOT) if args.json.is_relative_to(ROOT) else args.json
    print(f"\nWrote {shown} ({time.perf_counter() - start:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
