"""HQ side: the subscriber that verifies, stores and acknowledges events from every post."""
