"""`selfimprove serve`: an OpenAI-compatible server that applies a strategy in front of an engine (docs/serve.md)."""
