"""Generation: prompts × seeds → images + manifest, through a generator (our cascade or diffusers), with the run's fingerprint and provenance."""
