"""The model: encoder + pooling, task heads, the multi-task model and its one-folder format.

Imports torch and transformers; nothing here imports from training, serving or the CLI.
"""
