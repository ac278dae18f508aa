"""Segmentation metrics: overlap, surface distances and curves over interactions."""
