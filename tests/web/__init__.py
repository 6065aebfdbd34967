"""
Tests of twisted_sessions.web.
"""
