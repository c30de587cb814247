import sys

from coldbrew.cli.main import main

sys.exit(main())
