from aekit.cli import main

raise SystemExit(main())
