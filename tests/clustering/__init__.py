"""
Tests of twisted_sessions.clustering.
"""
