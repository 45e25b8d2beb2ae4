"""degreeflow: case management for degree-conferral records (the application shell)."""

__version__ = "0.1.0"
