"""Use cases of manager_svc and the ports they need."""
