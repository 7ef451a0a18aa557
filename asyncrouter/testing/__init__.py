"""Test helpers you can use in your own test suite: a fake clock and the fake provider fleet.

.. versionadded:: 0.1
"""

from ._clock import FakeClock

__all__ = ["FakeClock"]
