"""The Schedule aggregate: a trainer's lesson slot for an order, and its class result."""
