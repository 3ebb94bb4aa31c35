"""The dashboard (``/_sim/ui``): static files shipped in the package, and the journal as server-sent events."""
