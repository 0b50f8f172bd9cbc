"""Wikipedia dumps to clean article text (the `wiki_extract` stage).

Modules, one job each: `dump` reads the XML (compression, encoding, schema, multistream),
`language` knows localized names, `converter` resolves zhwiki's `-{...}-` markup, `clean`
turns wikitext into prose, `extract` orchestrates pages, workers, output and stats.
"""

from .dump import DumpError
from .extract import extract_dump

__all__ = ["extract_dump", "DumpError"]
