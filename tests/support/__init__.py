"""Test helpers shared by several test packages (not tests themselves)."""
