"""Personal data kept out of what graduate stores: redaction with typed placeholders."""

from graduate.privacy import records
from graduate.privacy.redact import PLACEHOLDER, RecordRedaction, Redactor, redactor_for

__all__ = ["records", "PLACEHOLDER", "RecordRedaction", "Redactor", "redactor_for"]
