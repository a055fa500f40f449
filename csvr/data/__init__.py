"""Video data: reading videos and their I-frames (the reader contract, PyAV, optional torchcodec),
H.264 slice-header parsing, writing videos, the dataset index, clip sampling, augmentation,
datasets, re-encoding and the built-in synthetic dataset."""
