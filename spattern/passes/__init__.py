"""The passes over sparse_pattern IR (one module each) and the pipeline runner (pipeline.py)."""
