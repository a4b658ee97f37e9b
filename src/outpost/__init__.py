"""Outpost: remote management for IoT fleets."""

__version__ = "0.1.0"
