"""kernels: see DESIGN.md (layout)."""
