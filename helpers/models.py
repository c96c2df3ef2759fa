"""Model surgery the chapters repeat once they have taught it."""

from __future__ import annotations

import keras


def replace_head(model: keras.Model, num_classes: int, name: str | None = None) -> keras.Model:
    """A model with `model`'s layers up to its last one and a new softmax Dense head; taught in chapter 04.

    The new model shares every layer but the old head with `model` (training
    one changes the other); clone `model` first to keep it apart.

    Args:
        model: a single-output model whose next-to-last layer outputs one
            feature vector per example, shape (batch, features).
        num_classes: units of the new `Dense` layer, at least 2.
        name: the new model's name (Keras picks one when None).
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model; got {type(model).__name__}.")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer of at least 2; got {num_classes!r}.")
    if len(model.outputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(model.outputs)} outputs; replace_head needs exactly one.")
    body = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if len(body) < 2:
        raise ValueError(
            f"model {model.name!r} has {len(body)} layer(s) after its input; replace_head needs "
            f"at least one layer before the head to attach the new head to."
        )
    features = body[-2].output
    if len(features.shape) != 2:
        raise ValueError(
            f"layer {body[-2].name!r} outputs shape {tuple(features.shape)}, not (batch, features); "
            f"end the model's body with a pooling or Flatten layer before its head."
        )
    outputs = keras.layers.Dense(num_classes, activation="softmax", name=f"head_{num_classes}")(features)
    # A single input stays a tensor: a one-element list would make the model expect a list.
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=name)
