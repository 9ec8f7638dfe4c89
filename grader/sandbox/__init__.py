"""Where student code runs: bubblewrap, cpu groups, the warm fork server, kernels and their
cells, and the bounded channel the observations come back by.
"""
