"""The regression gate: two evaluated runs → one verdict row per output and group."""
