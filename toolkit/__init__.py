"""Viseme-driven 3D avatar animation toolkit: speech in, smooth lip-sync curves out."""
