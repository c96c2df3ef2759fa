"""Load a .keras file on Keras's JAX backend and predict (chapter 9).

    KERAS_BACKEND=jax python shipping_predict_on_jax.py MODEL.keras IMAGES.npy OUTPUTS.npy
"""
import sys

import keras
import numpy as np

model_path, images_path, output_path = sys.argv[1:]
model = keras.models.load_model(model_path)
np.save(output_path, model.predict(np.load(images_path), verbose=0))
print(f"backend: {keras.backend.backend()}; TensorFlow imported: {'tensorflow' in sys.modules}")
