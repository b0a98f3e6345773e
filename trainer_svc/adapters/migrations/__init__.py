"""trainer_svc's schema history (alembic): one revision per schema change."""
