"""Reads a legacy (non-zip) PyTorch `.pth` state dict with numpy only, no PyTorch.

The legacy format is: a magic-number pickle, the protocol version (1001), system info, then the
state dict pickled with persistent ids for its storages, then the list of storage keys, then each
storage as an 8-byte element count and its raw little-endian data. Only the classes a state dict
needs are let through the unpickler; anything else is refused.
"""
import collections
import io
import pickle
import struct

import numpy as np

DTYPES = {'FloatStorage': np.float32, 'LongStorage': np.int64, 'IntStorage': np.int32, 'DoubleStorage': np.float64, 'HalfStorage': np.float16}

class StorageType:
    def __init__(self, name): self.name = name

def rebuild_tensor_v2(storage, offset, size, stride, requires_grad=None, hooks=None, *rest):
    return ('tensor', storage, offset, tuple(size), tuple(stride))

class Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == 'torch._utils' and name == '_rebuild_tensor_v2':
            return rebuild_tensor_v2
        if module == 'torch' and name.endswith('Storage'):
            return StorageType(name)
        if module == 'collections' and name == 'OrderedDict':
            return collections.OrderedDict
        raise pickle.UnpicklingError(f'refusing {module}.{name}')
    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, size, view_metadata)
        return ('storage', pid[1].name, pid[2], pid[4])

def load(data: bytes):
    f = io.BytesIO(data)
    magic = pickle.load(f); version = pickle.load(f); info = pickle.load(f)
    state = Unpickler(f).load()
    keys = pickle.load(f)
    if magic != 0x1950A86A20F9469CFC6C or version != 1001:
        raise ValueError('not a legacy PyTorch file')
    dtype_of = {v[1][2]: DTYPES[v[1][1]] for v in state.values() if isinstance(v, tuple) and v[0] == 'tensor'}
    storages = {}
    for key in keys:
        (n,) = struct.unpack('<q', f.read(8))
        dtype = np.dtype(dtype_of[key])
        storages[key] = np.frombuffer(f.read(n * dtype.itemsize), dtype=dtype)
    out = collections.OrderedDict()
    for name, v in state.items():
        _, (_, _, key, _), offset, size, stride = v
        flat = storages[key]
        if size:
            strides = [s * flat.itemsize for s in stride]
            arr = np.lib.stride_tricks.as_strided(flat[offset:], shape=size, strides=strides)
        else:
            arr = flat[offset:offset + 1].reshape(())
        out[name] = np.array(arr)
    return out
