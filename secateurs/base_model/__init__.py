"""The base model a run starts from: downloaded from the hub (`hub`), imported from a
GGUF file (`gguf_import`), and what the config check can know of it before any job
(`checks`: a local directory's files, its layer count, a GGUF header).
"""
