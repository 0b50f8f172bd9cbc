"""The embedded demo's tokenizer and small base model, built offline on CPU by the workflow.

Real recipes name a hub model; the demo builds its own so the whole workflow runs with no
network, and trains it long enough that its layers carry real structure (a random model's
layer scores and perplexities say nothing). Its input files ship in `config/demo/`; the
generator that wrote them is a repository tool, `config/demo/generate/`, not part of
this package.
"""
