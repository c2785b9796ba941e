"""imagen"""
