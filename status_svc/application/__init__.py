"""Use cases of status_svc (projecting events, reading views, watching notifications)."""
