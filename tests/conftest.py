"""Shared fixtures: people and objects. Feature-specific fixtures live in their test modules."""

from __future__ import annotations
