"""The evaluation stage: held-out perplexity and bits per byte, benchmarks through
lm-evaluation-harness, sample answers, and the report."""
