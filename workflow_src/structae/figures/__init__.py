"""Figures: one module per paper, plus `data` for dataset sample grids. Each writes one PNG."""
