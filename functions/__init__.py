"""Cloud Functions entry points, one module each; `main.py` re-exports them."""
