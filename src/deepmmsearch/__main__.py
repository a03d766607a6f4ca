import sys

from deepmmsearch.cli import main

sys.exit(main())
