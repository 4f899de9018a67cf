"""kNN-graph label propagation."""
