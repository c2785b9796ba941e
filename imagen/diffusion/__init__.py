"""imagen/diffusion"""
