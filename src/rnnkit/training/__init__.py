"""training: see DESIGN.md (layout)."""
