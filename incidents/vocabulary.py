"""The words reports and policy packs share: incident kinds, data categories and roles.

A pack may only use words listed here, so a typo in a pack ("cdp0") fails at start-up instead of
silently matching nothing. Add a word here when a policy needs it, with the sense it carries.
"""

from enum import StrEnum


class IncidentKind(StrEnum):
    HARM = "harm"  # an AI system caused harm to a person or group
    MALFUNCTION = "malfunction"  # it failed or behaved unexpectedly
    DATA_EXPOSURE = "data_exposure"  # City data was exposed, corrupted or misused
    INACCURATE_OUTPUT = "inaccurate_output"  # inaccurate or misleading results
    DISCRIMINATORY_OUTPUT = "discriminatory_output"  # biased or discriminatory results
    PROHIBITED_USE = "prohibited_use"  # a use the policy forbids
    UNAUTHORIZED_TOOL = "unauthorized_tool"  # an AI tool used without approval
    SECURITY = "security"  # a cybersecurity incident involving an AI system


class DataCategory(StrEnum):
    PII = "pii"  # personally identifiable information
    CJI = "cji"  # criminal justice information (CJIS)
    PHI = "phi"  # protected health information (HIPAA)
    CONFIDENTIAL = "confidential"  # other confidential City data
    PUBLIC = "public"


class Role(StrEnum):
    SUPERVISOR = "supervisor"  # the reporter's supervisor, resolved per department
    CDPO = "cdpo"  # City Digital Privacy Officer
    EMPLOYEE_RELATIONS = "employee_relations"
    CIO = "cio"
    CISO = "ciso"
    ISO = "iso"  # Information Security Officer
    AIO = "aio"  # AI Officer / coordinator of AI reviews
    IT_DEPARTMENT = "it_department"
    DATA_PRIVACY_OFFICER = "data_privacy_officer"
    AI_COORDINATOR = "ai_coordinator"
    AI_COMMITTEE = "ai_committee"
    LEGAL = "legal"  # City Attorney or counsel, for statutory breach notices
    SECURITY_TEAM = "security_team"  # staff working cybersecurity incident response cases
    DEPARTMENT_HEAD = (
        "department_head"  # head of the reporter's department, resolved per department
    )
