"""Compare evaluations: per-concept tables side by side, curves overlaid, flipped inputs."""
