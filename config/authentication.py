"""Authentication with the user's student record loaded in the same query: the API's
bearer tokens (simplejwt) and the web's sessions (Django's ``ModelBackend``).

Every mobile request authenticates, and most of them are a student's (the check-in,
``me/``, ``checkin/today/``): simplejwt's own class reads the user, then each view read
the student again.  :class:`JWTUserAuthentication` keeps simplejwt's token validation
and its refusals — answered with their own codes (``user_not_found``,
``user_inactive``, ``password_changed``) where simplejwt's say only
``authentication_failed`` — and reads both rows at once
(:func:`students.selectors.user_with_student`).
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend as DjangoModelBackend
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from students.selectors import user_with_student


class JWTUserAuthentication(JWTAuthentication):
    """simplejwt's ``JWTAuthentication``; the user comes with ``user.student``."""

    def get_user(self, validated_token):
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken(_("Token contained no recognizable user identification")) from exc
        if api_settings.USER_ID_FIELD != "id":  # the one-query read looks users up by primary key
            return super().get_user(validated_token)
        try:
            user = user_with_student(int(user_id))
        except (TypeError, ValueError):
            user = None
        if user is None:
            raise AuthenticationFailed(_("User not found"), code="user_not_found")
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed(_("User is inactive"), code="user_inactive")
        if api_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            api_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise AuthenticationFailed(_("The user's password has been changed."), code="password_changed")
        return user


class TokenAccount(TokenUser):
    """A bearer's account as far as its token tells: its id, nothing read.  Permissions
    and throttles need no more; a view that needs the account itself reads it with
    :func:`authenticate_account`."""


class JWTDeferredUserAuthentication(JWTUserAuthentication):
    """:class:`JWTUserAuthentication` with the token checked now and the account read
    later, or not at all: for a view whose own statement checks the account (the
    check-in's first report, :func:`reports.services.report_submit_direct`) and that
    calls :func:`authenticate_account` whenever it takes any other way."""

    def get_user(self, validated_token):
        if api_settings.USER_ID_FIELD != "id":  # the statement knows accounts by primary key
            return super().get_user(validated_token)
        if api_settings.USER_ID_CLAIM not in validated_token:
            raise InvalidToken(_("Token contained no recognizable user identification"))
        return TokenAccount(validated_token)


def authenticate_account(request):
    """The request's user, read as :class:`JWTUserAuthentication` reads it (with its
    refusals) when the deferred authentication left a :class:`TokenAccount`; from then
    on it is ``request.user``."""
    if isinstance(request.user, TokenAccount):
        request.user = JWTUserAuthentication().get_user(request.auth)
    return request.user


class JWTUserScheme(SimpleJWTScheme):
    """The OpenAPI security scheme of :class:`JWTUserAuthentication`: simplejwt's bearer."""

    target_class = "config.authentication.JWTUserAuthentication"


class ModelBackend(DjangoModelBackend):
    """Django's ``ModelBackend``; a session's user comes with ``user.student`` (one
    query per request instead of two — the scope of every page needs both)."""

    def get_user(self, user_id):
        try:
            user = user_with_student(int(user_id))
        except (TypeError, ValueError):
            return None
        return user if user is not None and self.user_can_authenticate(user) else None
