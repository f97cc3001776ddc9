import sys

try:
    from aekit.cli import main
except KeyboardInterrupt:  # Ctrl-C in the first instants, before main() can catch it
    print("aekit: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

raise SystemExit(main())
