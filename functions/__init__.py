"""Cloud Run functions entry points, one module each; `main.py` re-exports them."""
