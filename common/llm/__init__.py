"""Answer generation: the offline extractive answerer and OpenAI-compatible models."""
