"""
Tests of twisted_sessions.storage.
"""
