"""The training stage: healing, chat fine-tuning and the demo's pretraining run one loop
(`loop.run_training`) built from modules by concern (arguments, checkpoints, callbacks,
models, saving, processes), with distillation, adapter merging and multi-process launch beside it."""
