"""Packaged model weights and loading them: GGUF files for the local teacher and the LLM student
(``gguf``), sentence embeddings for diversity and drift (``embed``). Below students, data,
teacher and monitor, which all use them."""
