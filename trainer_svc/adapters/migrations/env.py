"""Run by alembic for every migration command; the kit hands over the connection."""

from ptkit.migrations import run_env
from trainer_svc.adapters.sql import metadata

run_env(metadata)
