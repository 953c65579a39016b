"""algorithms: see DESIGN.md (layout)."""
