"""Identity: organizations, users, memberships, roles, API tokens, sessions, authorize()."""
