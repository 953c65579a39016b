"""models: see DESIGN.md (layout)."""
