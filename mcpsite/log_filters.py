"""Log filters of the console handler (settings.LOGGING).

Django logs each refused request that looks suspicious (a Host header not in
ALLOWED_HOSTS, a body over DATA_UPLOAD_MAX_MEMORY_SIZE) on a ``django.security.*``
logger, with the exception's traceback: about 30 lines for one bad request, which
anyone can send in a loop to flood the log. The refusal is the server working as
intended; its one line (what was refused, and why) says all there is to say.
"""

import logging


class SecurityRefusalsOnOneLine(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("django.security."):
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        return True
