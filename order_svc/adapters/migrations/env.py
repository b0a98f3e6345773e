"""Run by alembic for every migration command; the kit hands over the connection."""

from order_svc.adapters.sql import metadata
from ptkit.migrations import run_env

run_env(metadata)
