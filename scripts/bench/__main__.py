import sys

from scripts.bench.report import main

sys.exit(main())
