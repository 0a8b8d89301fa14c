"""Consortium configuration, control-state database, and the controllers of the shared hardware.

The bottom layer of bcpctl: it imports no other bcpctl package.
"""
