"""The command line and web surface: thin commands that parse, call one core function, render."""
