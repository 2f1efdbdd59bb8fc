"""The reference answers for the vision test: runs the converted ONNX file in onnxruntime on the
packaged sample images (scikit-image's coffee and chelsea, matplotlib's grace_hopper.jpg) with the
model's preprocessing, and prints each image's top-5 ImageNet classes.

Usage: python3 tools/vision/reference_top5.py MODEL.onnx
       python3 tools/vision/reference_top5.py MODEL.onnx --tensors DIR
The second form runs the model on inputs someone else prepared (each DIR/NAME.f32 holds 1x3x224x224
little-endian float32 values, as the Rust labeller's test writes them) and prints `NAME top-5` per
file: the reference for the same preprocessed input.
Measured when the converter was written: coffee 967 (espresso) 968 925 960 504; chelsea 282 (tiger
cat) 285 281 287 904; grace_hopper 400 (academic gown) 667 (mortarboard) 652 (military uniform) 887 906.
"""
import os
import sys

import matplotlib
import numpy as np
import onnxruntime as ort
import skimage.data
from PIL import Image


def prepare(pixels):
    img = Image.fromarray(pixels).convert('RGB')
    w, h = img.size
    side = min(w, h) * 0.875
    left, top = (w - side) / 2, (h - side) / 2
    img = img.crop((round(left), round(top), round(left + side), round(top + side))).resize((224, 224), Image.BICUBIC)
    x = (np.asarray(img, dtype=np.float32) - 127.0) / 128.0
    return x.transpose(2, 0, 1)[None]


def main(model):
    session = ort.InferenceSession(model)
    hopper = os.path.join(os.path.dirname(matplotlib.__file__), 'mpl-data/sample_data/grace_hopper.jpg')
    images = [('coffee', skimage.data.coffee()), ('chelsea', skimage.data.chelsea()), ('grace_hopper', np.asarray(Image.open(hopper)))]
    for name, pixels in images:
        logits = session.run(None, {'input': prepare(pixels)})[0][0]
        print(name, ' '.join(str(int(i)) for i in np.argsort(-logits)[:5]))


def tensors(model, folder):
    session = ort.InferenceSession(model)
    for file in sorted(os.listdir(folder)):
        if not file.endswith('.f32'):
            continue
        x = np.fromfile(os.path.join(folder, file), dtype='<f4')
        if x.size != 3 * 224 * 224:
            sys.exit(f'{file}: {x.size} values, not 3x224x224')
        logits = session.run(None, {'input': x.reshape(1, 3, 224, 224)})[0][0]
        print(file[:-4], ' '.join(str(int(i)) for i in np.argsort(-logits)[:5]))


if __name__ == '__main__':
    if len(sys.argv) == 2:
        main(sys.argv[1])
    elif len(sys.argv) == 4 and sys.argv[2] == '--tensors':
        tensors(sys.argv[1], sys.argv[3])
    else:
        sys.exit(__doc__)
