"""Personal data kept out of what graduate stores: redaction with typed placeholders."""

from graduate.privacy import records
from graduate.privacy.redact import PLACEHOLDER, RecordRedaction, Redactor, input_redactor_for, redact_messages, redact_text, redactor_for

__all__ = ["records", "PLACEHOLDER", "RecordRedaction", "Redactor", "input_redactor_for", "redact_messages", "redact_text", "redactor_for"]
