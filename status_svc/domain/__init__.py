"""The read side: per-order status views, class results and customer notifications,
built only from the domain events the other contexts publish."""
