"""Autograder for Dive-into-Deep-Learning style PyTorch notebooks."""

__version__ = "0.2.0"
