"""The machine-learning core: embeddings, concept heads, evaluation. No Django here."""
