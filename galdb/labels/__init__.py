"""Tasks (what a head predicts) and their labels, with provenance and precedence."""
