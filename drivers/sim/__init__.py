"""Simulated traffic shared by the synthetic camera and the scale simulator, so both see the same trucks."""
