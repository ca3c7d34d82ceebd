"""Keys of an experiment entry that do not change the trained model. A module of its own, so the trainer
imports it without the config loader's jsonschema and yaml (bench/gpu_check.py runs where only torch,
numpy and h5py are installed)."""

# Changing them must not retrain: the workflow's train params and the resume state's fingerprint leave them out.
NOT_TRAINING = ("seeds", "evaluate", "resources", "reported")
