"""osr-reconciler: declarative data connections for a reporting portal."""

__version__ = "0.1.0"


def console() -> int:
    """The console script's entry (and `python -m reconciler`'s): a Ctrl-C while the tool's
    modules are still being imported, or while main() is saying an error, is told as at any
    other time before a write (exit 1), not as a KeyboardInterrupt traceback with exit 130
    (DESIGN §6: 0, 1 and 2 are the exit codes). After a commit main() ignores it."""
    try:
        from reconciler.cli import main

        return main()
    except KeyboardInterrupt:  # also one landing while main() says an error (then nothing changed)
        import sys

        print("error: interrupted; nothing was changed", file=sys.stderr)
        return 1
