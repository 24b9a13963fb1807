"""HTTP routes, one module per resource; each route parses, calls the domain, returns a schema."""
