"""Lets the examples import the package glqjit from this checkout when it is not installed."""

import os
import sys


def add_glqjit_to_path():
    try:
        import glqjit  # noqa: F401
    except ImportError:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "torch"))
