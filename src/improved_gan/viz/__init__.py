"""Figures, image grids, GIFs and the HTML report."""
