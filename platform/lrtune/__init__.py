"""lrtune: learning-rate policies for deep RL, searched at cluster scale."""

__version__ = "0.1.0"

