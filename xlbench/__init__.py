"""xlbench: fine-tune and benchmark multilingual retrieval encoders (mono / cross / multi)."""

__version__ = "0.1.0"
