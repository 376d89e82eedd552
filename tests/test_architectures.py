import pytest

from kerasml.training.architectures import ARCHITECTURES, get_architecture
from kerasml.errors import KerasmlError


def test_tutorial_is_model_m_exactly():
    model = get_architecture("tutorial").build((28, 28, 1), 10)
    assert model.count_params() == 94_602
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D", "MaxPooling2D", "Dropout", "Conv2D", "MaxPooling2D", "Dropout", "Conv2D",
        "MaxPooling2D", "Dropout", "Flatten", "Dense", "Dense"]


def test_chollet_is_the_keras_example():
    assert get_architecture("chollet").build((28, 28, 1), 10).count_params() == 34_826


# Pretrained backbones take colour images of at least 32x32 only: tests/test_transfer.py covers them.
@pytest.mark.parametrize("name", sorted(name for name, arch in ARCHITECTURES.items() if arch.backbone is None))
@pytest.mark.parametrize("shape, classes", [((28, 28, 1), 10), ((32, 32, 3), 4)])
def test_every_architecture_builds_for_any_image_shape(name, shape, classes):
    model = ARCHITECTURES[name].build(shape, classes)
    assert tuple(model.input_shape[1:]) == shape and model.output_shape[-1] == classes


def test_unknown_architecture():
    with pytest.raises(KerasmlError, match="unknown architecture"):
        get_architecture("resnet9000")
