"""Pseudonyms for people: the one way every identity is hashed before it is written.

HR employee ids, Jira account ids and email addresses become salted SHA-256 hashes (the HR
salt, ``PSAFE_HR_ID_SALT``), so the warehouse can join a ticket's reporter to the HR roster
through the identity map without holding anyone's identity in clear. The HR loader computes
the same hash in SQL (assets/landing/hr.py); ``pseudonym`` is its Python twin.

``pseudonymise_people`` rewrites a Jira issue as received, before anything of it is stored or
quarantined: every user object (reporter, creator, assignee, changelog authors, users in
custom fields, users of linked issues) keeps only its account type and the pseudonyms of its
account id and email address; display names, avatars and links (whose query names the
account) are dropped, as are the names in changes of user fields and in mentions. What it
rewrote carries ``"pseudonymised": true``, so rewriting an issue again (histories stored by an
earlier sync beside ones fetched now) leaves the pseudonyms as they are.
"""

from __future__ import annotations

import hashlib
from typing import Any

# Hex characters a pseudonym keeps: 80 bits, no collision among any organisation's people.
PSEUDONYM_LENGTH = 20
# Prefixes that keep the kinds of identity apart in the hash (an account id never equals an
# employee id's pseudonym).
JIRA_ACCOUNT = "jira-account"
EMAIL = "email"
# Changelog items of these fields name users: their from/to are account ids, the strings names.
USER_FIELDS = frozenset({"assignee", "reporter", "creator"})
# What a pseudonymised user object keeps besides the pseudonyms.
KEPT_USER_KEYS = ("accountType", "active")
DONE = "pseudonymised"
# Parts of an issue that never name a person: not walked (a sync receives hundreds of thousands).
PERSONLESS_KEYS = frozenset({"project", "status", "issuetype", "components", "priority", "avatarUrls", "labels",
                             "statusCategory", "resolution", "fixVersions", "versions"})


def pseudonym(salt: str, value: str) -> str:
    """The salted hash of ``value`` (trimmed), as the warehouse stores employee ids."""
    return hashlib.sha256(f"{salt}:{value.strip()}".encode()).hexdigest()[:PSEUDONYM_LENGTH]


def account_pseudonym(salt: str, account_id: str) -> str:
    return pseudonym(salt, f"{JIRA_ACCOUNT}:{account_id.strip()}")


def email_pseudonym(salt: str, email: str) -> str:
    """Email addresses compare without case (jane.doe@ and Jane.Doe@ are one person)."""
    return pseudonym(salt, f"{EMAIL}:{email.strip().lower()}")


def pseudonymise_people(value: Any, salt: str | None) -> Any:
    """``value`` (a Jira issue or any part of one) with every person replaced by pseudonyms;
    without a salt the people are dropped altogether (only their account type stays)."""
    if isinstance(value, list):
        return [pseudonymise_people(item, salt) for item in value]
    if not isinstance(value, dict) or value.get(DONE) is True:
        return value
    if "accountId" in value:
        return _user(value, salt)
    if value.get("type") == "mention" and isinstance(value.get("attrs"), dict):
        attrs = value["attrs"]
        if attrs.get(DONE) is True:
            return value
        return {**value, "attrs": {**{k: v for k, v in attrs.items() if k not in ("id", "text")},
                                   "id": _hashed(account_pseudonym, attrs.get("id"), salt), "text": "@", DONE: True}}
    if (value.get("field") in USER_FIELDS or value.get("fieldId") in USER_FIELDS) and "toString" in value:
        return {**value, "from": _hashed(account_pseudonym, value.get("from"), salt), "fromString": None,
                "to": _hashed(account_pseudonym, value.get("to"), salt), "toString": None, DONE: True}
    return {key: item if key in PERSONLESS_KEYS else pseudonymise_people(item, salt) for key, item in value.items()}


def _user(user: dict, salt: str | None) -> dict:
    kept = {key: user[key] for key in KEPT_USER_KEYS if key in user}
    return {**kept, "accountId": _hashed(account_pseudonym, user.get("accountId"), salt),
            "emailAddress": _hashed(email_pseudonym, user.get("emailAddress"), salt), DONE: True}


def _hashed(how, value: object, salt: str | None) -> str | None:
    return how(salt, value) if salt is not None and isinstance(value, str) and value.strip() else None
