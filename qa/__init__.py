"""Turning a question into an answer: retrieve → read → answer → render, for chat, batch and eval."""
