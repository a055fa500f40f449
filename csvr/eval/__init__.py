"""Evaluation: finetuning and linear probing (through the training engine), kNN retrieval,
metrics, plots, reports and export."""
