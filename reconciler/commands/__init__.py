"""One module per subcommand; each command returns its exit code (reconciler.cli registers them)."""
