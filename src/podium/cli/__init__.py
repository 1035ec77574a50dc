"""`podium <verb>`: the only place that prints; one module per area registers its verbs."""
