"""Run by alembic for every migration command; the kit hands over the connection."""

from manager_svc.adapters.sql import metadata
from ptkit.migrations import run_env

run_env(metadata)
