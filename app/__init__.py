"""Warmline: self-hosted live chat with skill-based routing and warm transfers."""

__version__ = "0.1.0"
