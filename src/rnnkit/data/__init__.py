"""data: see DESIGN.md (layout)."""
