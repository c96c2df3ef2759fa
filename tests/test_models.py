"""helpers.models: replace_head keeps the body, swaps the head, and rejects what it cannot do."""

import warnings

import keras
import numpy as np
import pytest

from helpers.models import replace_head


def tiny_classifier(num_classes: int = 3) -> keras.Model:
    inputs = keras.Input((4,))
    features = keras.layers.Dense(8, activation="relu", name="features")(inputs)
    features = keras.layers.Dropout(0.3, name="dropout")(features)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="old_head")(features)
    return keras.Model(inputs, outputs)


def test_new_head_has_the_requested_number_of_classes():
    new_model = replace_head(tiny_classifier(), 5)

    assert new_model.output_shape == (None, 5)
    assert new_model.layers[-1].count_params() == 8 * 5 + 5


def test_body_layers_are_the_same_objects_and_the_old_head_is_gone():
    model = tiny_classifier()
    new_model = replace_head(model, 5)

    assert new_model.get_layer("features") is model.get_layer("features")
    assert len(new_model.layers) == len(model.layers)
    assert "old_head" not in [layer.name for layer in new_model.layers]


def test_new_model_outputs_probabilities_computed_from_the_shared_features():
    keras.utils.set_random_seed(0)
    new_model = replace_head(tiny_classifier(), 5)

    probabilities = new_model.predict(np.ones((2, 4), dtype="float32"), verbose=0)

    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_a_single_input_model_keeps_a_single_input_so_arrays_are_taken_as_they_are():
    """Built from `model.inputs` (a list), the new model would expect a list and warn on JAX."""
    new_model = replace_head(tiny_classifier(), 5)

    assert not isinstance(new_model.input, (list, tuple))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras's "structure of `inputs` doesn't match" warning
        new_model(np.ones((2, 4), dtype="float32"))


def test_works_on_a_sequential_model_and_takes_a_name():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(3)])

    new_model = replace_head(model, 2, name="two_classes")

    assert new_model.output_shape == (None, 2) and new_model.name == "two_classes"


@pytest.mark.parametrize("bad", [1, 0, 2.5, "11", True])
def test_rejects_a_class_count_that_is_not_an_integer_of_at_least_two(bad):
    with pytest.raises(ValueError, match=f"got {bad!r}"):
        replace_head(tiny_classifier(), bad)


def test_rejects_something_that_is_not_a_keras_model():
    with pytest.raises(TypeError, match="got Dense"):
        replace_head(keras.layers.Dense(3), 5)


def test_rejects_a_model_with_two_outputs():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, [keras.layers.Dense(2)(inputs), keras.layers.Dense(3)(inputs)])

    with pytest.raises(ValueError, match="2 outputs"):
        replace_head(model, 5)


def test_rejects_a_model_with_nothing_before_its_head():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])

    with pytest.raises(ValueError, match="at least one layer before the head"):
        replace_head(model, 5)


def test_rejects_features_that_are_not_one_vector_per_example():
    inputs = keras.Input((6, 6, 1))
    features = keras.layers.Conv2D(2, 3)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(features))

    with pytest.raises(ValueError, match="pooling or Flatten"):
        replace_head(model, 5)
