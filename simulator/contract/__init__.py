"""openapi.yaml compiled once: operations, schemas with human messages, the router (404 vs 405)."""
