"""One worker of chapter 8's cluster: fine-tune the book's MobileNet with a hand-written loop.

The chapter starts this file once per worker, with TF_CONFIG naming the cluster and the worker:

    python distributed_worker.py MODEL.keras TRAIN.npz OUT_DIR EPOCHS SEED [CRASH_AFTER_EPOCH]

Each worker prints one JSON line per epoch and saves its final weights to
OUT_DIR/weights_<index>.npz. The chapter also imports `train_by_hand` from here
and runs it under MirroredStrategy in the notebook.
"""
import json
import os
import sys
import time

os.environ["KERAS_BACKEND"] = "tensorflow"
import keras
import numpy as np
import tensorflow as tf

GLOBAL_BATCH_SIZE = 64  # images per training step, over all replicas
LEARNING_RATE = 1e-4


def make_train_ds(images, labels):
    """Global batches of float pixels; each worker keeps its share of every batch."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return (tf.data.Dataset.from_tensor_slices((images, labels))
            .batch(GLOBAL_BATCH_SIZE, drop_remainder=True)
            .map(lambda x, y: (tf.cast(x, "float32"), y)).with_options(options))


def make_train_step(strategy, model, optimizer):
    """A tf.function running one step on every replica: chapter 7's step, distributed."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(reduction=None)

    def replica_step(images, labels):  # on one replica, with its share of the batch
        with tf.GradientTape() as tape:
            per_image_loss = loss_fn(labels, model(images, training=True))
            # divide by the *global* batch: the replicas' sum is then the batch mean
            loss = tf.nn.compute_average_loss(per_image_loss, global_batch_size=GLOBAL_BATCH_SIZE)
        gradients = tape.gradient(loss, model.trainable_weights)
        optimizer.apply(gradients, model.trainable_weights)  # all-reduces the gradients first
        return loss

    @tf.function
    def train_step(images, labels):
        per_replica_losses = strategy.run(replica_step, args=(images, labels))
        return strategy.reduce("SUM", per_replica_losses, axis=None)

    return train_step


def train_by_hand(strategy, model_file, train_ds, epochs, seed, on_epoch_end=None):
    """Load the model under `strategy` and fine-tune it; return the model."""
    keras.utils.set_random_seed(seed)  # the same in every worker: the same random layers
    with strategy.scope():  # variables created here are mirrored on every replica
        model = keras.models.load_model(model_file, compile=False)
        optimizer = keras.optimizers.Adam(learning_rate=LEARNING_RATE)
        optimizer.build(model.trainable_weights)
    train_step = make_train_step(strategy, model, optimizer)
    for epoch in range(epochs):
        losses = [train_step(images, labels)
                  for images, labels in strategy.experimental_distribute_dataset(train_ds)]
        if on_epoch_end is not None:
            on_epoch_end(epoch, float(np.mean(losses)))
    return model


def main():
    model_file, data_file, out_dir = sys.argv[1:4]
    epochs, seed = int(sys.argv[4]), int(sys.argv[5])
    crash_after_epoch = int(sys.argv[6]) if len(sys.argv) > 6 else -1
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG, waits for all
    worker = strategy.cluster_resolver.task_id

    def report(epoch, loss):
        print(json.dumps({"epoch": epoch, "loss": loss, "time": time.time()}), flush=True)
        if epoch == crash_after_epoch:
            os._exit(1)  # die like a machine losing power: no exception, no clean-up

    data = np.load(data_file)
    model = train_by_hand(strategy, model_file, make_train_ds(data["x"], data["y"]),
                          epochs, seed, on_epoch_end=report)
    np.savez(os.path.join(out_dir, f"weights_{worker}.npz"), *model.get_weights())


if __name__ == "__main__":
    main()
