"""Training and evaluation scripts; inference code never imports this package."""
