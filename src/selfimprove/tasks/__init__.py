"""Tasks: datasets, prompt formats, answer extraction and graders."""

from selfimprove.tasks.base import Task, get, names

__all__ = ["Task", "get", "names"]
