"""Pure maths of the metrics: no files, no networks (Fréchet distance, KID, intervals, set statistics)."""
