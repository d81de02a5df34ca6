import sys

from scripts.admin.cli import main

sys.exit(main())
