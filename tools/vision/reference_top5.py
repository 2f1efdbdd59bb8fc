"""The reference answers for the vision test: runs the converted ONNX file in onnxruntime on the
packaged sample images (scikit-image's coffee and chelsea, matplotlib's grace_hopper.jpg) with the
model's preprocessing, and prints each image's top-5 ImageNet classes.

Usage: python3 tools/vision/reference_top5.py MODEL.onnx
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


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
