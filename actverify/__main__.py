import sys

from actverify.cli import main

sys.exit(main())
