"""imagen/training"""
