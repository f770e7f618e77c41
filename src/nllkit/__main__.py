"""``python -m nllkit``: the ``nllkit`` command."""

from nllkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
