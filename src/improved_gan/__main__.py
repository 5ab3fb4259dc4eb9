from improved_gan.cli import main

raise SystemExit(main())
