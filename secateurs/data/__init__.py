"""The data stage: Wikipedia dumps to text, script conversion, Cosmopedia sampling, the
token-ratio mix, tokenize-and-pack, and chat data for fine-tuning."""
