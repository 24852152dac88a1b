import sys

from meshsim.cli import main

sys.exit(main())
