"""``GET /``: a short index of what the server serves (no upstream API has one)."""
