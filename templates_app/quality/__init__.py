"""Template quality: the accessibility and dark-mode lint run on every email version at submit.

registry.py holds the rules by stable id; a11y.py, contrast.py (WCAG 2.x contrast) and darkmode.py
define them over tree.py's element tree of the rendered, CSS-inlined HTML; lint.py runs them per
locale; service.py ties them into review (errors block approval, per-rule overrides with a reason).
"""
