"""The training stage: the stage skeleton shared by healing, chat and the demo's
pretraining, with distillation, adapter merging and multi-process launch beside it."""
