"""langdu (朗读): read Chinese news articles aloud."""

__version__ = "0.1.0"
