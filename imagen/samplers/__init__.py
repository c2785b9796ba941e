"""imagen/samplers"""
