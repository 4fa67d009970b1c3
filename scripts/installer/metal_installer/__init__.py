"""metal-stack in-image installer (see ../install.py)."""
