"""The pruning stage: layer access, layer scores, the pruning plan and the slicer."""
