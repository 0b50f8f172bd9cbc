"""The Snakemake glue: what rules and their scripts need that is not a stage's logic.

`log` sends a job's output to its rule's log file (progress lines to the terminal),
`params` spreads settings into one rule param each, `code` puts the checkout on
PYTHONPATH and digests the package code a rule runs, `cluster` sizes rules' resources.
Every stage may import it (training reports progress); it imports no stage.
"""
