"""``python -m bindings.demo.emulators``: see `bindings.demo.emulators.serve.main`."""

from __future__ import annotations

from bindings.demo.emulators.serve import main

raise SystemExit(main())
