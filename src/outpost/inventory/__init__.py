"""Inventory: sites, asset types, assets, validated configuration, change sets."""
