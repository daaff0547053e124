from engine.run.main import main

raise SystemExit(main())
