"""raters_ui"""
