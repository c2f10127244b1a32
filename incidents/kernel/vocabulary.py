"""The words reports and policy packs share: incident kinds, data categories and roles, and the
plain words people read for each. Every label is written here once.

A pack may only use words listed here, so a typo in a pack ("cdp0") fails at start-up instead of
silently matching nothing. Add a word here when a policy needs it, with the sense it carries.
"""

from enum import StrEnum


class IncidentKind(StrEnum):
    HARM = "harm"
    MALFUNCTION = "malfunction"
    DATA_EXPOSURE = "data_exposure"
    INACCURATE_OUTPUT = "inaccurate_output"
    DISCRIMINATORY_OUTPUT = "discriminatory_output"
    PROHIBITED_USE = "prohibited_use"
    UNAUTHORIZED_TOOL = "unauthorized_tool"
    SECURITY = "security"
    # A report that came by email: nobody chose a kind yet, so the pack's triage rule applies
    # until a triager classifies it. The form never offers it.
    UNCLASSIFIED = "unclassified"

    @property
    def plain(self) -> str:
        """E.g. 'data exposure': the kind as a short noun, for subject lines and headings."""
        if self is IncidentKind.UNCLASSIFIED:
            return "incident, not yet classified,"
        return self.value.replace("_", " ")


class DataCategory(StrEnum):
    PII = "pii"
    CJI = "cji"
    PHI = "phi"
    CONFIDENTIAL = "confidential"
    PUBLIC = "public"


class Role(StrEnum):
    SUPERVISOR = "supervisor"  # resolved per department
    CDPO = "cdpo"
    EMPLOYEE_RELATIONS = "employee_relations"
    CIO = "cio"
    CISO = "ciso"
    ISO = "iso"
    AIO = "aio"
    IT_DEPARTMENT = "it_department"
    DATA_PRIVACY_OFFICER = "data_privacy_officer"
    AI_COORDINATOR = "ai_coordinator"
    AI_COMMITTEE = "ai_committee"
    LEGAL = "legal"
    SECURITY_TEAM = "security_team"
    DEPARTMENT_HEAD = "department_head"  # resolved per department
    SECURITY_ON_CALL = "security_on_call"  # resolved by the on-call roster, at the moment
    SECURITY_BACKUP = "security_backup"  # the roster's secondary
    IT_DIRECTOR = "it_director"
    CITY_MANAGER = "city_manager"
    CHIEF_OF_POLICE = "chief_of_police"


# What a member of staff picks on the report form.
KIND_CHOICES: dict[IncidentKind, str] = {
    IncidentKind.HARM: "An AI system caused harm to a person or group",
    IncidentKind.MALFUNCTION: "An AI system failed or behaved unexpectedly",
    IncidentKind.DATA_EXPOSURE: "City data was exposed, corrupted or misused",
    IncidentKind.INACCURATE_OUTPUT: "Inaccurate or misleading results",
    IncidentKind.DISCRIMINATORY_OUTPUT: "Discriminatory or biased results",
    IncidentKind.PROHIBITED_USE: "A use the policy prohibits",
    IncidentKind.UNAUTHORIZED_TOOL: "An AI tool used without approval",
    IncidentKind.SECURITY: "A cybersecurity incident involving AI",
}

# The kind inside a sentence: "When a report concerns harm caused by AI, …".
KIND_WORDS: dict[IncidentKind, str] = {
    IncidentKind.HARM: "harm caused by AI",
    IncidentKind.MALFUNCTION: "a malfunctioning AI system",
    IncidentKind.DATA_EXPOSURE: "City data exposed, corrupted or misused",
    IncidentKind.INACCURATE_OUTPUT: "inaccurate or misleading results",
    IncidentKind.DISCRIMINATORY_OUTPUT: "biased or discriminatory results",
    IncidentKind.PROHIBITED_USE: "a prohibited use of AI",
    IncidentKind.UNAUTHORIZED_TOOL: "an AI tool used without approval",
    IncidentKind.SECURITY: "a cybersecurity incident",
    IncidentKind.UNCLASSIFIED: "an AI incident not yet classified",
}

# What a member of staff ticks on the report form ("public" needs no tick).
CATEGORY_CHOICES: dict[DataCategory, str] = {
    DataCategory.PII: "Personal information (names, addresses, ID numbers…)",
    DataCategory.CJI: "Criminal justice information (CJIS)",
    DataCategory.PHI: "Health information (HIPAA)",
    DataCategory.CONFIDENTIAL: "Other confidential City data",
}

# The category inside a sentence: "… involving personal information".
CATEGORY_WORDS: dict[DataCategory, str] = {
    DataCategory.PII: "personal information",
    DataCategory.CJI: "criminal justice information",
    DataCategory.PHI: "health information",
    DataCategory.CONFIDENTIAL: "confidential City data",
    DataCategory.PUBLIC: "public data",
}

# Roles as a resident or a new member of staff would say them.
ROLE_NAMES: dict[Role, str] = {
    Role.SUPERVISOR: "the reporter's supervisor",
    Role.CDPO: "the City Digital Privacy Officer (CDPO)",
    Role.EMPLOYEE_RELATIONS: "the Office of Employee Relations",
    Role.CIO: "the Chief Information Officer (CIO) / IT Director",
    Role.CISO: "the Chief Information Security Officer (CISO)",
    Role.ISO: "the Information Security Officer (ISO)",
    Role.AIO: "the Artificial Intelligence Officer (AIO)",
    Role.IT_DEPARTMENT: "the IT Department",
    Role.DATA_PRIVACY_OFFICER: "the Data Privacy Officer",
    Role.AI_COORDINATOR: "the AI coordinator",
    Role.AI_COMMITTEE: "the AI committee",
    Role.LEGAL: "the City Attorney's Office",
    Role.SECURITY_TEAM: "the security operations team",
    Role.DEPARTMENT_HEAD: "the head of the reporter's department",
    Role.SECURITY_ON_CALL: "security on call",
    Role.SECURITY_BACKUP: "the security on-call backup",
    Role.IT_DIRECTOR: "the Information Technology Director",
    Role.CITY_MANAGER: "the City Manager",
    Role.CHIEF_OF_POLICE: "the Chief of Police",
}


def role_name(role: Role | str) -> str:
    """E.g. 'the City Digital Privacy Officer (CDPO)'; a role this list lacks, in plain words."""
    try:
        return ROLE_NAMES[Role(role)]
    except (ValueError, KeyError):
        return str(role).replace("_", " ")
