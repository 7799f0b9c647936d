"""Command-line entry points: ``customs-edge`` (the controller, HQ, read) and ``edgectl`` (the technician)."""
