"""ML Program ops declare their inputs per iOS release, as coremltools' ops declare `input_spec`:
the engine runs the version for the function's opset and refuses, at load and by name, a parameter
that version does not declare; the declarations themselves are checked against coremltools'."""

from __future__ import annotations

import numpy as np
import pytest

from kerasml.errors import KerasmlError
from kerasml.runtime import UnsupportedModelError, load_model
from kerasml.runtime.registry import CONST, MIL_OPS, OPTIONAL, OPTIONAL_CONST, TENSOR, InputSpec, OpRegistry

ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402

TARGETS = {15: ct.target.iOS15, 16: ct.target.iOS16, 17: ct.target.iOS17, 18: ct.target.iOS18}


def convert(target, build, shape=(2, 3)):
    """A coremltools MLModel (not loaded) of the program `build(x)` for an fp32 input of `shape`."""

    @mb.program(input_specs=[mb.TensorSpec(shape=shape)], opset_version=target)
    def program(x):
        return build(x)

    return ct.convert(program, convert_to="mlprogram", compute_precision=ct.precision.FLOAT32,
                      minimum_deployment_target=target, skip_model_load=True)


def the_op(spec, kind: str):
    function = spec.mlProgram.functions["main"]
    return next(o for o in function.block_specializations[function.opset].operations if o.type == kind)


def relabel(spec, opset: str):
    """A copy of the program declared for `opset` (its block moves to that key)."""
    spec = type(spec).FromString(spec.SerializeToString())
    function = spec.mlProgram.functions["main"]
    if function.opset != opset:
        function.block_specializations[opset].CopyFrom(function.block_specializations[function.opset])
        del function.block_specializations[function.opset]
        function.opset = opset
    return spec


def test_every_op_declares_what_coremltools_declares_for_each_release():
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

    differences = []
    for name in MIL_OPS:
        for ios, target in TARGETS.items():
            ours = MIL_OPS.version(name, ios)
            theirs = SSAOpRegistry.core_ops.get(name, {}).get(target)
            if ours is None or theirs is None:
                if (ours is None) != (theirs is None):
                    differences.append(f"{name} iOS {ios}: only {'kerasml' if ours else 'coremltools'} has it")
                continue
            mine = {p: (i.optional, i.const) for p, i in ours.inputs.items()}
            spec = {p: (bool(t.optional), bool(t.const)) for p, t in theirs.input_spec.input_types.items()}
            if mine != spec:
                differences.append(f"{name} iOS {ios}: kerasml {mine}, coremltools {spec}")
    assert differences == []


def test_a_parameter_the_op_does_not_declare_is_refused_before_anything_is_read():
    weight = np.arange(48, dtype=np.float32).reshape(16, 3)  # large enough to live in weight.bin
    mlmodel = convert(ct.target.iOS15, lambda x: mb.leaky_relu(x=mb.linear(x=x, weight=weight), alpha=0.1,
                                                               name="leaky"))
    spec = mlmodel.get_spec()
    op = the_op(spec, "leaky_relu")
    op.inputs["slope"].CopyFrom(op.inputs["alpha"])
    # without its package the weights cannot be read: the undeclared parameter is named first
    with pytest.raises(UnsupportedModelError, match=r"op 'leaky\w*' \(leaky_relu\) has parameter 'slope', which "
                                                    r"leaky_relu does not declare in iOS 15 programs \(CoreML5\)") as info:
        load_model(spec)
    assert "\n" not in str(info.value)
    del op.inputs["slope"]
    with pytest.raises(KerasmlError, match="keeps weights in"):
        load_model(spec)


def test_the_function_opset_picks_the_version_not_the_parameters_given():
    """The same scatter with index -1: iOS 15 and 16 count it from the end, iOS 17 calls it out of
    bounds; an iOS 17 program's validate_indices is no parameter of iOS 16's scatter."""
    ones = np.ones((1, 3), np.float32)
    ios16 = convert(ct.target.iOS16, lambda x: mb.scatter(data=x, indices=np.array([-1], np.int32), updates=ones,
                                                           mode="add", axis=0, name="scattered")).get_spec()
    assert "validate_indices" not in the_op(ios16, "scatter").inputs
    x = np.zeros((1, 2, 3), np.float32)
    for opset in ("CoreML6", "CoreML5"):
        out = next(iter(load_model(relabel(ios16, opset)).predict({"x": x}).values()))
        np.testing.assert_array_equal(out[0], [[0, 0, 0], [1, 1, 1]])
    model = load_model(relabel(ios16, "CoreML7"))  # same ops, same parameters, iOS 17's meaning
    with pytest.raises(UnsupportedModelError, match="index -1, out of bounds without validate_indices"):
        model.predict({"x": x})
    ios17 = convert(ct.target.iOS17, lambda x: mb.scatter(data=x, indices=np.array([1], np.int32), updates=ones,
                                                           mode="add", axis=0, validate_indices=True)).get_spec()
    out = next(iter(load_model(ios17).predict({"x": x}).values()))
    np.testing.assert_array_equal(out[0], [[0, 0, 0], [1, 1, 1]])
    with pytest.raises(UnsupportedModelError, match=r"\(scatter\) has parameter 'validate_indices', which scatter "
                                                    r"does not declare in iOS 16 programs \(CoreML6\)"):
        load_model(relabel(ios17, "CoreML6"))


def test_an_op_newer_than_the_program_and_an_unknown_opset_are_refused():
    spec = convert(ct.target.iOS17, lambda x: mb.resize(x=x, shape=np.array([4, 6], np.int32), resized_dims=np.uint32(2),
                                                         interpolation_mode="LINEAR")).get_spec()
    with pytest.raises(UnsupportedModelError, match="'resize', which came with iOS 17: an iOS 16 program"):
        load_model(relabel(spec, "CoreML6"))
    with pytest.raises(UnsupportedModelError, match="opset 'CoreML42' is not one the kerasml runtime knows"):
        load_model(relabel(spec, "CoreML42"))


def test_a_missing_input_or_a_computed_constant_is_a_malformed_model():
    spec = convert(ct.target.iOS15, lambda x: mb.leaky_relu(x=x, alpha=0.1)).get_spec()
    op = the_op(spec, "leaky_relu")
    alpha = type(op.inputs["alpha"])()
    alpha.CopyFrom(op.inputs["alpha"])
    op.inputs["alpha"].arguments[0].Clear()
    op.inputs["alpha"].arguments[0].name = "x"  # a program input where MIL requires a constant
    with pytest.raises(KerasmlError, match=r"takes 'alpha' as a constant \(MIL requires it\), but 'x' is not one"):
        load_model(spec)
    del op.inputs["alpha"]
    with pytest.raises(KerasmlError, match="lacks its 'alpha' input; the model is malformed"):
        load_model(spec)


def test_registering_states_inputs_and_one_version_per_release():
    ops = OpRegistry("test op")
    spec = InputSpec(x=TENSOR, alpha=CONST)
    ops.register("f", inputs=spec)(lambda args: ["15"])
    ops.register("f", opset=17, inputs=spec.but(alpha=None, beta=OPTIONAL_CONST, gamma=OPTIONAL))(lambda a: ["17"])
    assert ops.version("f", 16).opset == 15 and ops.version("f", 26).opset == 17
    assert list(ops.version("f", 18).inputs) == ["x", "beta", "gamma"]
    assert ops["f"].at(14) is None
    with pytest.raises(RuntimeError, match="two versions for iOS 17"):
        ops.register("f", opset=17, inputs=spec)(lambda args: [])
    with pytest.raises(TypeError, match="InputSpec"):
        ops.add("g", lambda args: [], inputs={"x": TENSOR})
    with pytest.raises(TypeError, match="not an Input"):
        InputSpec(x="tensor")
