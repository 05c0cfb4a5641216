"""Masking of ID-card numbers and phone numbers (脱敏).

``110101199003071234`` → ``1101**********1234``; ``13812341234`` → ``138****1234``.
Whether a given user sees a value in full is decided per student by
:meth:`campuses.scoping.Scope.annotate_pii`; these functions only format.
"""


def mask_id_number(value: str) -> str:
    """Keep the first four and last four characters of an ID number."""
    value = value or ""
    if len(value) <= 8:
        return "*" * len(value)
    return f"{value[:4]}{'*' * (len(value) - 8)}{value[-4:]}"


def mask_phone(value: str) -> str:
    """Keep the first three and last four digits of a phone number."""
    value = value or ""
    if len(value) <= 7:
        return "*" * len(value)
    return f"{value[:3]}{'*' * (len(value) - 7)}{value[-4:]}"


def shown_phone(student, full: bool) -> str:
    return student.phone if full else mask_phone(student.phone)


def shown_id_number(student, full: bool) -> str:
    return student.id_number if full else mask_id_number(student.id_number)
