"""Test and benchmark support: a simulated room, a synthetic shelf scene."""
