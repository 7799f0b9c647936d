"""A lane: its cameras and scale, and the fusion of what they see into one event per crossing."""
