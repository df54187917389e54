"""Serving: the student behind an OpenAI-compatible API with student, cascade, shadow and canary
routing (``app``), and a logging proxy in front of the teacher (``proxy``).

FastAPI, uvicorn and prometheus-client come with ``pip install 'graduate[serve]'`` and are imported
only when a server is built.
"""
