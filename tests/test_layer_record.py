"""The layer record's pure parts: scope names to Keras layers, ops coremltools renamed placed by
their type between their neighbours, and the pairing across renaming steps."""

from __future__ import annotations

from kerasml.conversion.layers import owners_filled, paired
from kerasml.model.layer_record import read, write_to

KERAS = [("image", "InputLayer"), ("conv", "Conv2D"), ("pool", "MaxPooling2D"), ("conv_1", "Conv2D"),
         ("norm", "BatchNormalization"), ("up", "UpSampling2D"), ("flat", "Flatten"), ("head", "Dense")]


def test_a_renamed_pooling_goes_to_the_one_pooling_between_its_neighbours():
    types = ["mul", "conv", "relu", "max_pool", "conv", "upsample_nearest_neighbor", "reshape", "linear"]
    owners = [None, "conv", "conv", None, "norm", None, "flat", "head"]
    assert owners_filled(types, owners, KERAS) == [None, "conv", "conv", "pool", "norm", "up", "flat", "head"]


def test_a_renamed_op_stays_unplaced_when_nothing_or_two_layers_fit():
    # a convolution may hold a folded batch normalisation: its value is not conv_1's own
    assert owners_filled(["conv", "conv"], ["conv", None], KERAS) == ["conv", None]
    two_pools = [("a", "MaxPooling2D"), ("b", "MaxPooling2D"), ("c", "Dense")]
    assert owners_filled(["max_pool", "linear"], [None, "c"], two_pools) == [None, "c"]
    # a layer that already has an op of its own takes no other
    assert owners_filled(["max_pool", "max_pool"], ["pool", None], KERAS) == ["pool", None]


def test_pairing_follows_the_op_types_across_renaming():
    before = [("mul", None), ("conv", "conv"), ("relu", "conv"), ("max_pool", "pool"), ("linear", "head")]
    after = [("mul", "mul_0"), ("conv", "conv_0"), ("relu", "relu_0"), ("max_pool", "max_pool_0"),
             ("linear", "linear_0")]
    assert paired(before, after) == {"conv": "relu_0", "pool": "max_pool_0", "head": "linear_0"}


def test_the_record_round_trips_and_refuses_what_is_not_one():
    metadata: dict[str, str] = {}
    write_to(metadata, {"conv": "relu_0"})
    assert read(metadata) == {"conv": "relu_0"}
    assert read({"com.kerasml.layers": "[1, 2]"}) is None and read({"com.kerasml.layers": "{"}) is None
    assert read({}) is None
