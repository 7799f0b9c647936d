"""Hardware edges of a lane: plate cameras and truck scales, each behind a small interface chosen by URL."""
