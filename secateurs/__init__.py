"""secateurs: depth-prune a large language model, heal it, and make a chat model of it.

The package holds every piece of logic the Snakemake workflow runs; the rules only wire
files to it, so each stage can also be used by hand (`python -m secateurs --help`).
"""

__version__ = "0.1.0"
