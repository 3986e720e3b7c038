from reconciler import console

raise SystemExit(console())
