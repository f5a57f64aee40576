"""App-database tables (SQLModel). Alembic migrations in `migrations/versions/` create them."""

from app.models.site import Site

__all__ = ["Site"]
