"""v1: users, posts and todos."""
