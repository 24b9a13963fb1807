"""Alembic migrations: the only way the database schema is created or changed.

Shipped as a package so that `feedforward migrate` finds them in an installed copy (see
service/migrate.py, which locates this directory from the package, not from the working directory).
"""
