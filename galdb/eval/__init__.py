"""Evaluation of embeddings: kNN accuracy and linear probes with few labels."""
