"""Human review: queue strategies, shared by the few-shot evaluation and the review app."""
