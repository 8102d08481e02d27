from csm_agent.cli import main

raise SystemExit(main())
