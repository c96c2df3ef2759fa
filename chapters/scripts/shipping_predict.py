"""Predict with the exported blood-cell SavedModel, using TensorFlow only (chapter 9).

    python shipping_predict.py SAVEDMODEL_DIR IMAGES.npy PROBABILITIES.npy
"""
import sys

import numpy as np
import tensorflow as tf

saved_model_dir, images_path, output_path = sys.argv[1:]
model = tf.saved_model.load(saved_model_dir)
images = np.load(images_path)                     # uint8, (N, 96, 96, 3)
probabilities = model.serve(tf.constant(images))  # the endpoint model.export() wrote
np.save(output_path, probabilities.numpy())
print(f"predicted {len(images)} images in a fresh process")
