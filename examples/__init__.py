"""
Runnable examples; every one is run by ``tests/test_examples.py``.
"""
