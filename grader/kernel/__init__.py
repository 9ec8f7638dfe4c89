"""What runs inside the student's kernel: probing, the data loader, the self-check.

Nothing here imports nbclient, jupyter_client, the kernel pool or the control groups: the
kernel is on the other side of the trust boundary (tests/test_layout.py keeps it so).
"""
