from pmd.cli import main

raise SystemExit(main())
