"""`python -m csvr` is the same as the `csvr` console command."""

from csvr.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
