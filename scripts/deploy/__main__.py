import sys

from scripts.deploy.deploy import main

sys.exit(main())
