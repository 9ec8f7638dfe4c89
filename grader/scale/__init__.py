"""Grading many submissions: worker processes (--jobs), a Dask cluster, shards and their
collection, interrupts and resumes, and the fingerprint workers must share.
"""
