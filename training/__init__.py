"""Training, evaluation and ablation of the BiLSTM sentiment model (`python -m training`).

Importing this package does not import torch; `training.train` does.
"""
