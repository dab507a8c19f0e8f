"""Command-line interface: `stylegan <command>`."""
