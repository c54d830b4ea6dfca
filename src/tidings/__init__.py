"""tidings: real-time in-app notifications for multi-tenant SaaS."""

from tidings.app import create_app
from tidings.config import Settings
from tidings.domain.notifications import Audience, NewNotification, Notification
from tidings.errors import TidingsError

__all__ = ["Audience", "NewNotification", "Notification", "Settings", "TidingsError", "create_app"]
__version__ = "0.1.0"
