"""Use cases of order_svc and the ports they need."""
