"""Process-level services for running unattended: systemd readiness and watchdog, logging, metrics, keys.

Nothing here knows about lanes or devices; the controller hands in callbacks (is every loop alive?
what are the current figures?) so that these pieces stay small and testable on their own.
"""
