"""Chapter 8's look ahead: keras.distribution's DataParallel on the JAX backend, two CPU devices.

The chapter runs it in a fresh process, with the environment it needs set first:

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \
        PYTHONPATH=<repository root> python distributed_jax_data_parallel.py

It trains a small Dense classifier on 4,096 blood cells shrunk to 12x12 pixels for a few
epochs, and prints the devices, how a batch and a weight are laid out, and the accuracy.
"""
import keras
import numpy as np
from keras import layers

from helpers.data import load_blood_cells

EPOCHS = 5

devices = keras.distribution.list_devices()  # ["cpu:0", "cpu:1"]: XLA_FLAGS split the CPU
keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
print("backend:", keras.backend.backend(), "| devices:", devices)

cells = load_blood_cells(labels="8", image_size=96, crop=200)
def shrink(images):  # 96x96 -> 12x12 (mean of 8x8 blocks), flattened, scaled to [0, 1]
    return images.reshape(-1, 12, 8, 12, 8, 3).mean(axis=(2, 4)).reshape(len(images), -1) / 255
order = np.random.default_rng(0).permutation(len(cells.train_images))[:4096]  # mixed classes
x_train, y_train = shrink(cells.train_images[order]), cells.train_labels[order]
x_test, y_test = shrink(cells.test_images), cells.test_labels
print("training data:", x_train.shape)

keras.utils.set_random_seed(42)
model = keras.Sequential([keras.Input(shape=(12 * 12 * 3,)), layers.Dense(64, activation="relu"),
                          layers.Dense(8, activation="softmax")])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=128, epochs=EPOCHS, verbose=0)

batch_layout = keras.distribution.distribution().get_data_layout((128, 12 * 12 * 3))
print("a batch of 128:", batch_layout.axes, "over mesh axes",
      batch_layout.device_mesh.axis_names, "->", 128 // len(devices), "rows per device")
kernel = model.layers[0].kernel
print("first Dense kernel", tuple(kernel.shape), "sharding:", kernel.value.sharding.spec,
      "(replicated) on", len(kernel.value.sharding.device_set), "devices")
print(f"test accuracy after {EPOCHS} epochs: {model.evaluate(x_test, y_test, verbose=0)[1]:.3f}")
