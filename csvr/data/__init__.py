"""Video data: decoding and I-frames (PyAV), the dataset index, clip sampling, augmentation,
datasets, re-encoding and the built-in synthetic dataset."""
