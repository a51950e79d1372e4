"""Pure analysis: a typed `Inventory` in, per-binding and per-protocol results out."""

from __future__ import annotations

from .engine import analyze, controller_security_group
from .normalize import parse_eni_sg_tags

__all__ = ["analyze", "controller_security_group", "parse_eni_sg_tags"]
