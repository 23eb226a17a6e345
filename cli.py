"""Qrels Studio command line: batch jobs over the same services the pages use.

Run ``python cli.py --help``. The commands live in the ``cli/`` package, one module per group;
errors a user can fix print one line and exit with status 1.
"""

from cli.main import main

if __name__ == "__main__":
    main()
