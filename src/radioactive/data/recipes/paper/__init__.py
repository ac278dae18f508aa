"""Recipes for the public datasets of the paper (PROTOCOL §7), one module per dataset."""
