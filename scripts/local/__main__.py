import sys

from scripts.local.stack import main

sys.exit(main())
