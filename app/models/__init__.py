"""App-database tables (SQLModel). Alembic migrations in `migrations/versions/` create them."""

from app.models.api_key import ApiKey
from app.models.billing import BillingProfile, StripeEvent, UsageRecord
from app.models.invitation import INVITATION_LIFETIME, Invitation, hash_token
from app.models.organization import Membership, Organization, Role
from app.models.site import SharedLink, Site
from app.models.user import AccountToken, RecoveryCode, User

__all__ = [
    "INVITATION_LIFETIME",
    "AccountToken",
    "ApiKey",
    "BillingProfile",
    "Invitation",
    "Membership",
    "Organization",
    "RecoveryCode",
    "Role",
    "SharedLink",
    "Site",
    "StripeEvent",
    "UsageRecord",
    "User",
    "hash_token",
]
