"""Use cases of trainer_svc and the ports they need."""
