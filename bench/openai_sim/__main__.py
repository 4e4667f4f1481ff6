"""Entry point for `python -m bench.openai_sim`."""

from .server import main

main()
