"""The embedded demo: a corpus, a tokenizer and a small base model built offline on CPU.

Real recipes name a hub model; the demo builds its own so the whole workflow runs with no
network, and trains it long enough that its layers carry real structure (a random model's
layer scores and perplexities say nothing).
"""
