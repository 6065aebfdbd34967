"""
Tests of twisted_sessions.stats.
"""
