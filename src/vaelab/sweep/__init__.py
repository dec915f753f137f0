"""Sweeps: experiments as data, expanded into runs, executed locally or on Ray."""
