"""admin_console models arrive with their issue; the app exists now so the layout is fixed."""
