"""The `spnn` command: one module per group of subcommands, wired in `spnn.cli.main`."""
