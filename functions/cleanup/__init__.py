"""The cleanup (auditor) function. A package only so that type checking tells its app.py
from the broker's."""
