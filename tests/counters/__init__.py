"""
Tests of twisted_sessions.counters.
"""
