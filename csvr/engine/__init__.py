"""The training engine (Lightning Fabric): configs, checkpoints, the pretraining loop."""
