"""Migration revisions, date-prefixed (Alembic ignores this file)."""
