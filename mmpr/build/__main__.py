import sys

from mmpr.build.cli import main

if __name__ == "__main__":
    sys.exit(main())
