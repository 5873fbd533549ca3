"""v2: the v1 routes, with paginated, filterable list endpoints."""
