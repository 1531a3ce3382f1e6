"""Network definitions only: nn.Module + config dataclass + from_checkpoint."""
