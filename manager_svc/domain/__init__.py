"""The trainer roster and the Assignment aggregate: which trainer holds which order."""
