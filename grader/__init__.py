"""Autograder for Dive-into-Deep-Learning style PyTorch notebooks."""

__version__ = "0.1.0"
