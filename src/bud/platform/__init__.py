"""The platform the actions act on; the built-in registry of models, clusters, deployments."""
