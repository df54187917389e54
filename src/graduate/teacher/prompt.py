"""The teacher's chat request for an item: see ``graduate.formats.prompt``."""

from graduate.formats.prompt import PLACEHOLDER, extract_text, render_messages, request_params

__all__ = ["PLACEHOLDER", "extract_text", "render_messages", "request_params"]
