"""Built-in representers, registered through the same hooks a third-party plugin uses."""
