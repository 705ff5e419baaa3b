import sys

from mmpr.build.cli import main

sys.exit(main())
