"""Answer extraction and graders."""
