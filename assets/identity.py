"""Pseudonyms for people: the one way every identity is hashed before it is written.

HR employee ids, Jira account ids and email addresses become salted SHA-256 hashes (the HR
salt, ``PSAFE_HR_ID_SALT``), so the warehouse can join a ticket's reporter to the HR roster
through the identity map without holding anyone's identity in clear. An employee id is hashed
as ``employee_key`` reads it (``employee_pseudonym``), by the HR loader and the identity map
alike, so the forms one id takes in different exports are one person.

``pseudonymise_people`` rewrites a Jira issue as received, before anything of it is stored or
quarantined: every user object (reporter, creator, assignee, changelog authors, users in
custom fields, users of linked issues) keeps only its account type and the pseudonyms of its
account id and email address; display names, avatars and links (whose query names the
account) are dropped, as are the names in changes of user fields and in mentions. What it
rewrote carries ``"pseudonymised": true``, so rewriting an issue again (histories stored by an
earlier sync beside ones fetched now) leaves the pseudonyms as they are.

Every text the issue keeps (its summary, the text of its description, the old and new text
that a changelog item of a text field such as the description holds in fromString/toString, an
address in a link) loses the people it names (``pseudonymised_text``): a wiki-markup mention,
``[~accountid:<id>]`` as the changelog writes an @mention (``[~username]`` before account
ids), becomes ``[~accountid:<the pseudonym of that id>]``, the pseudonym the person has in the
reporter and everywhere else; an account id of the colon form (557058:<uuid>, in a profile
link) becomes its pseudonym; a typed email address becomes ``email:<its pseudonym>``. The rest
of the text, the incident ids and URLs a review names included, is kept as written, and a text
rewritten once is left as it is.

A changelog item changes a user field when its field is one of ``USER_FIELDS`` or its
from/to holds an account id (Atlassian's, alone or in a bracketed list as multi-user pickers
write it, or a Jira Server user key that a migration carried over): custom user pickers (an
"Incident commander") and Jira Service Management's "Request participants" or "Approvers" are
named by each site as it likes, so their names cannot be listed. Such an item keeps the
pseudonyms of its ids and loses the names (fromString/toString); a value of another field that
happens to look like an account id (24 hex digits) is pseudonymised the same way, the cost of
never keeping a person's id. Every other change of a custom field loses its display strings
too (a picker whose values are usernames, a name typed in a text field): nothing reads them,
and a custom field's strings cannot be told from a person's name.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import dagster as dg

# Hex characters a pseudonym keeps: 80 bits, no collision among any organisation's people.
PSEUDONYM_LENGTH = 20
# Prefixes that keep the kinds of identity apart in the hash (an account id never equals an
# employee id's pseudonym).
JIRA_ACCOUNT = "jira-account"
EMAIL = "email"
# An employee id that is a whole number, as a spreadsheet may write it.
EMPLOYEE_NUMBER = re.compile(r"[0-9]+(\.0*)?")
# A number a spreadsheet wrote in scientific notation (an id of 12 digits or more, saved from
# Excel as CSV, becomes 1.23457E+11): its last digits are gone, so several people may share
# it, and no rule can give them back. Such an id is refused, never hashed as one person.
# Excel's form only (one digit, a signed exponent: 1.23457E+11, 5E+11), so an id that merely has
# an E between digits (12E4) is not taken for one.
ROUNDED_NUMBER = re.compile(r"[0-9](?:[.,][0-9]+)?[eE][+-][0-9]+")
# Changelog items of these fields name users: their from/to are account ids, the strings names.
USER_FIELDS = frozenset({"assignee", "reporter", "creator"})
# An Atlassian account id: the legacy 24 hex digits (5b10ac8d82e05b22cc7d4ef5), or a number
# (557058, 712020, ...) or Service Management's "qm" before a colon and a UUID (customers'
# ids may have more colon-separated parts), or a Jira Server user key (JIRAUSER10100) that a
# migration to Cloud left in old changelogs.
ATLASSIAN_ACCOUNT_ID = r"(?:[0-9]+|qm):[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}(?::[0-9a-f-]+)*"
ACCOUNT_ID = re.compile(rf"[0-9a-f]{{24}}|{ATLASSIAN_ACCOUNT_ID}|JIRAUSER[0-9]+", re.IGNORECASE)
# People named in a text (a summary, the description's text, the old and new text a changelog
# item of a text field keeps, a link's address). Wiki markup's mention, as Jira writes text
# fields' changes in the changelog: [~accountid:<id>], or [~username] from before Atlassian
# account ids (an ADF mention node is rewritten as a node).
WIKI_MENTION = re.compile(r"\[~(accountid:)?([^\[\]|\n]+)\]", re.IGNORECASE)
# An account id of the colon form written anywhere else (a profile link ".../people/<id>"). The
# legacy 24 hex digits are recognised in a mention only: in free text they cannot be told from
# a commit hash or a trace id, and a review's text must keep the ids it names.
ACCOUNT_ID_IN_TEXT = re.compile(rf"(?<![\w-]){ATLASSIAN_ACCOUNT_ID}(?![\w-])", re.IGNORECASE)
# An email address typed in a text (or linked: "mailto:jane.doe@example.com").
EMAIL_ADDRESS = re.compile(r"\w[\w.%+-]*@[\w-]+(?:\.[\w-]+)+")
# A pseudonym as a rewritten mention holds it ("[~accountid:<pseudonym>]"): left as it is.
PSEUDONYM = re.compile(rf"[0-9a-f]{{{PSEUDONYM_LENGTH}}}")
# A multi-user picker's change writes its users as "[id1, id2]".
BRACKETED_LIST = re.compile(r"\[(.*)\]", re.DOTALL)
# Keys of a changelog item that hold account ids whatever its field (Jira Cloud adds them to
# some items beside from/to).
ITEM_ACCOUNT_KEYS = ("tmpFromAccountId", "tmpToAccountId")
# What a pseudonymised user object keeps besides the pseudonyms.
KEPT_USER_KEYS = ("accountType", "active")
DONE = "pseudonymised"
# Parts of an issue that never name a person: not walked (a sync receives hundreds of thousands).
PERSONLESS_KEYS = frozenset({"project", "status", "issuetype", "components", "priority", "avatarUrls", "labels",
                             "statusCategory", "resolution", "fixVersions", "versions"})


# A salt this short is guessable offline: with a list of the company's ids, each guess costs
# one hash per id. The check warns below it (tests and the sandbox use short ones).
MIN_SALT_LENGTH = 16


def checked_salt(salt: str | None, log) -> None:
    """Refuse a blank salt (PSAFE_HR_ID_SALT set but empty): every pseudonym would be a plain
    hash of the id, which a list of candidate ids reverses. Warn (``log``) when it is short."""
    if salt is None:
        return
    if not salt.strip():
        raise dg.Failure(allow_retries=False, description=(
            "PSAFE_HR_ID_SALT is set but empty: employee ids and Jira people would be hashed without a secret, "
            "and anyone with a list of ids could reverse the pseudonyms. Set it to a long random secret (e.g. "
            "the output of `python -c 'import secrets; print(secrets.token_hex(32))'`), kept and the same "
            "every night. Nothing was read or written."))
    if len(salt) < MIN_SALT_LENGTH:
        log(f"PSAFE_HR_ID_SALT has {len(salt)} characters: a short salt can be guessed offline and the pseudonyms "
            f"reversed with a list of ids; use a random secret of at least {MIN_SALT_LENGTH} characters (changing "
            "it re-keys every pseudonym: see the README's PSAFE_HR_ID_SALT)")


def salt_fingerprint(salt: str | None) -> str:
    """What the warehouse keeps of the salt its stored pseudonyms were made with: a salted
    hash of a fixed text (the salt cannot be read back from it), or "none" without a salt."""
    return "none" if salt is None else pseudonym(salt, "psafe salt fingerprint")


def pseudonym(salt: str, value: str) -> str:
    """The salted hash of ``value`` (trimmed), as the warehouse stores employee ids."""
    return hashlib.sha256(f"{salt}:{value.strip()}".encode()).hexdigest()[:PSEUDONYM_LENGTH]


def is_rounded_number(employee_id: str) -> bool:
    """``employee_id`` is a number in scientific notation (ROUNDED_NUMBER): digits lost."""
    return ROUNDED_NUMBER.fullmatch(employee_id.strip()) is not None


def employee_key(employee_id: str) -> str:
    """An HR employee id as it is compared: a number without leading zeros or a ``.0`` (a
    spreadsheet drops the zeros of ``00101`` and writes ``101.0`` for ``101``), an email
    address in lower case (jane.doe@ and Jane.Doe@ are one person), anything else as written."""
    text = employee_id.strip()
    if EMPLOYEE_NUMBER.fullmatch(text):
        return text.partition(".")[0].lstrip("0") or "0"
    return text.lower() if "@" in text else text


def scoped_employee_key(employee_id: str, scope: str | None = None) -> str:
    """``employee_key`` within the HR system ``scope`` numbered it in (an HR file's
    ``employee_id_scope``, whatever its case): id 1 of scope DE is not the 1 of another system."""
    key = employee_key(employee_id)
    return f"{scope.strip().upper()}:{key}" if scope else key


def written_employee_key(written: str) -> str:
    """An employee id as an identity map writes it, compared as the HR load compares its ids:
    ``DE:00101`` or ``de:Jane.Doe@Example.com`` is that id of the HR system scoped DE (an
    email's ``@`` comes after any scope)."""
    scope, colon, employee_id = written.strip().partition(":")
    if colon and employee_id.strip() and "@" not in scope:
        return scoped_employee_key(employee_id, scope)
    return employee_key(written)


def employee_pseudonym(salt: str, employee_id: str, scope: str | None = None) -> str:
    """The pseudonym of an HR employee id of the HR system ``scope`` (None: the only one)."""
    return pseudonym(salt, scoped_employee_key(employee_id, scope))


def written_employee_pseudonym(salt: str, written: str) -> str:
    """The pseudonym of an employee id as an identity map writes it (``written_employee_key``)."""
    return pseudonym(salt, written_employee_key(written))


def account_pseudonym(salt: str, account_id: str) -> str:
    return pseudonym(salt, f"{JIRA_ACCOUNT}:{account_id.strip()}")


def email_pseudonym(salt: str, email: str) -> str:
    """Email addresses compare without case (jane.doe@ and Jane.Doe@ are one person)."""
    return pseudonym(salt, f"{EMAIL}:{email.strip().lower()}")


def pseudonymise_people(value: Any, salt: str | None) -> Any:
    """``value`` (a Jira issue or any part of one) with every person replaced by pseudonyms;
    without a salt the people are dropped altogether (only their account type stays)."""
    if isinstance(value, str):
        return pseudonymised_text(value, salt)
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
    if _is_user_change(value):
        return {**value, "from": _hashed_users(value.get("from"), salt), "fromString": None,
                "to": _hashed_users(value.get("to"), salt), "toString": None,
                **{key: _hashed(account_pseudonym, value[key], salt) for key in ITEM_ACCOUNT_KEYS if key in value},
                DONE: True}
    if value.get("fieldtype") == "custom" and "field" in value and {"fromString", "toString"} & value.keys():
        return {**{key: pseudonymise_people(item, salt) for key, item in value.items()},
                "fromString": None, "toString": None, DONE: True}
    return {key: item if key in PERSONLESS_KEYS else pseudonymise_people(item, salt) for key, item in value.items()}


def pseudonymised_text(text: str, salt: str | None) -> str:
    """``text`` with the people it names replaced by their pseudonyms (see the module's doc);
    without a salt they are dropped (a mention becomes "@", an address "email:")."""
    if "[~" in text:
        text = WIKI_MENTION.sub(lambda mention: _mention(mention, salt), text)
    if ":" in text:
        text = ACCOUNT_ID_IN_TEXT.sub(lambda account: _hashed(account_pseudonym, account[0], salt) or "", text)
    if "@" in text:
        text = EMAIL_ADDRESS.sub(lambda email: f"email:{_hashed(email_pseudonym, email[0], salt) or ''}", text)
    return text


def _mention(mention: re.Match, salt: str | None) -> str:
    """A wiki mention with the pseudonym of its account id (or legacy username)."""
    prefix, named = mention.group(1, 2)
    if prefix and PSEUDONYM.fullmatch(named):
        return mention[0]
    hashed = _hashed(account_pseudonym, named, salt)
    return f"[~accountid:{hashed}]" if hashed else "@"


def _is_user_change(value: dict) -> bool:
    """Whether ``value`` is a changelog item that changes a user field (see the module's doc)."""
    if "field" not in value or not any(key in value for key in ("from", "to", "fromString", "toString")):
        return False
    if value.get("field") in USER_FIELDS or value.get("fieldId") in USER_FIELDS:
        return True
    return any(_listed_users(value.get(key)) for key in ITEM_ACCOUNT_KEYS) or any(
        ACCOUNT_ID.fullmatch(user) for key in ("from", "to") for user in _listed_users(value.get(key)))


def _listed_users(value: object) -> list[str]:
    """The users a changelog item's from/to names: the value itself, or the elements of a
    bracketed list ("[id1, id2]"); none when it is empty or not text."""
    if not isinstance(value, str):
        return []
    listed = BRACKETED_LIST.fullmatch(value.strip())
    users = listed.group(1).split(",") if listed else [value]
    return [user.strip() for user in users if user.strip()]


def _hashed_users(value: object, salt: str | None) -> str | None:
    """A user field's from/to with each user's account id pseudonymised, in the same shape (a
    bracketed list stays one: "[]" for none, or when no salt keeps them)."""
    if isinstance(value, str) and BRACKETED_LIST.fullmatch(value.strip()):
        hashed = [_hashed(account_pseudonym, user, salt) for user in _listed_users(value)]
        return "[" + ", ".join(user for user in hashed if user is not None) + "]"
    return _hashed(account_pseudonym, value, salt)


def _user(user: dict, salt: str | None) -> dict:
    kept = {key: user[key] for key in KEPT_USER_KEYS if key in user}
    return {**kept, "accountId": _hashed(account_pseudonym, user.get("accountId"), salt),
            "emailAddress": _hashed(email_pseudonym, user.get("emailAddress"), salt), DONE: True}


def _hashed(how, value: object, salt: str | None) -> str | None:
    return how(salt, value) if salt is not None and isinstance(value, str) and value.strip() else None
