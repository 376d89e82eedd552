"""The math both model formats share: plain NumPy arrays in and out, no spec, no protobuf.

Rule: **kernels/ holds the math that NeuralNetwork layers and ML Program ops share, one module per
family; a layout-keeping fast path lives in the module of the plain kernel it speeds up.** A layer
(nn/) or op (mil/) module reads its parameters and calls kernels; math only it needs stays there.

    activations.py    sigmoid, erf, gelu, softmax; apply_in_place (fused elementwise chains)
    conv.py           conv2d with its depthwise fast path, conv_transpose2d, same_pads
    pooling.py        pool2d, pool_out_size
    resize.py         sample_grid, box_grid, bilinear_sample, resize_bilinear, resize_nearest
    recurrent.py      lstm, gru, rnn cells and reorder_gates
    normalization.py  layer_norm
    reductions.py     log_sum_exp
    data_movement.py  strided_slice, pad_constant (np.pad that keeps the memory layout)
    workspace.py      Workspace: the buffers a layer or op reuses between batches

The names below are the package's face: layer and op modules call `kernels.conv2d(...)`; kernel
modules import each other from their family modules, never through the face.
"""

from kerasml.runtime.kernels.activations import GELU_MODES, apply_in_place, erf, gelu, sigmoid, softmax
from kerasml.runtime.kernels.conv import conv2d, conv_transpose2d, depthwise_conv2d, same_pads
from kerasml.runtime.kernels.data_movement import pad_constant, strided_slice
from kerasml.runtime.kernels.normalization import layer_norm
from kerasml.runtime.kernels.pooling import pool2d, pool_out_size
from kerasml.runtime.kernels.reductions import log_sum_exp
from kerasml.runtime.kernels.recurrent import Activation, gru, lstm, reorder_gates, rnn
from kerasml.runtime.kernels.resize import (GRID_MODES, bilinear_sample, box_grid, nearest_indices, resize_bilinear,
                                            resize_nearest, sample_grid)
from kerasml.runtime.kernels.workspace import Workspace

__all__ = [
    "GELU_MODES", "GRID_MODES", "Activation", "Workspace", "apply_in_place", "bilinear_sample", "box_grid", "conv2d",
    "conv_transpose2d", "depthwise_conv2d", "erf", "gelu", "gru", "layer_norm", "log_sum_exp", "lstm", "nearest_indices",
    "pad_constant", "pool2d", "pool_out_size", "reorder_gates", "resize_bilinear", "resize_nearest", "rnn",
    "same_pads", "sample_grid", "sigmoid", "softmax", "strided_slice",
]
