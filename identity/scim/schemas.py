"""The SCIM discovery documents (RFC 7643 §5-7, RFC 7644 §4): what csm's SCIM service supports, the User,
Group and EnterpriseUser schemas (the attributes csm stores and answers), and the two resource types."""

from django.conf import settings
from django.urls import reverse

from identity.scim.services import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, LIST_SCHEMA, USER_SCHEMA

SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"


def _url(name: str, *args) -> str:
    return settings.CSM_BASE_URL + reverse(name, args=args)


def service_provider_config() -> dict:
    return {
        "schemas": [SPC_SCHEMA],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": settings.CSM_SCIM_MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A SCIM token of the org (csmscim_…), created in the org's settings under SCIM.",
            "primary": True,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": _url("scim-service-provider-config")},
    }


def _attr(name, type_="string", *, multi=False, required=False, case_exact=False, mutability="readWrite",
          returned="default", uniqueness="none", description="", sub=None, reference_types=None):
    attribute = {"name": name, "type": type_, "multiValued": multi, "description": description,
                 "required": required, "caseExact": case_exact, "mutability": mutability, "returned": returned,
                 "uniqueness": uniqueness}
    if sub is not None:
        attribute["subAttributes"] = sub
    if reference_types is not None:
        attribute["referenceTypes"] = reference_types
    return attribute


def _multi_sub(value_description: str, types: list[str]) -> list:
    return [
        _attr("value", description=value_description),
        _attr("display", mutability="readOnly", description="A human-readable name."),
        {**_attr("type", description="A label: " + ", ".join(types) + "."), "canonicalValues": types},
        _attr("primary", "boolean", description="The primary value."),
    ]


USER_ATTRIBUTES = [
    _attr("userName", required=True, uniqueness="server",
          description="Unique per org (case-insensitive). An email-shaped userName is the person's address "
                      "when 'emails' has none."),
    _attr("externalId", case_exact=True, description="The identity provider's id of the user."),
    _attr("name", "complex", description="The person's name.", sub=[
        _attr("formatted"), _attr("familyName"), _attr("givenName"), _attr("middleName"),
        _attr("honorificPrefix"), _attr("honorificSuffix")]),
    _attr("displayName", description="The name shown for the person."),
    _attr("nickName"), _attr("title"), _attr("userType"), _attr("preferredLanguage"), _attr("locale"),
    _attr("timezone"),
    _attr("active", "boolean", description="false suspends the person's membership of the org at once."),
    _attr("emails", "complex", multi=True, description="The primary (else work, else first) address finds or "
                                                       "creates the person's csm account.",
          sub=_multi_sub("An email address.", ["work", "home", "other"])),
    _attr("phoneNumbers", "complex", multi=True, sub=_multi_sub("A phone number.", ["work", "mobile", "other"])),
    _attr("groups", "complex", multi=True, mutability="readOnly",
          description="The groups the user belongs to (change them through /Groups).",
          sub=[_attr("value", mutability="readOnly"), _attr("display", mutability="readOnly"),
               _attr("$ref", "reference", mutability="readOnly", reference_types=["Group"])]),
]

GROUP_ATTRIBUTES = [
    _attr("displayName", required=True, uniqueness="server",
          description="Unique per org (case-insensitive); the name a group→role mapping of the org names."),
    _attr("externalId", case_exact=True, description="The identity provider's id of the group."),
    _attr("members", "complex", multi=True, description="The group's users.", sub=[
        _attr("value", mutability="immutable", description="A User id."),
        _attr("display", mutability="readOnly"),
        _attr("$ref", "reference", mutability="immutable", reference_types=["User"])]),
]

ENTERPRISE_ATTRIBUTES = [
    _attr("employeeNumber"), _attr("costCenter"), _attr("organization"), _attr("division"), _attr("department"),
    _attr("manager", "complex", sub=[_attr("value"), _attr("$ref", "reference", reference_types=["User"]),
                                     _attr("displayName", mutability="readOnly")]),
]


def _schema(schema_id: str, name: str, description: str, attributes: list) -> dict:
    return {"schemas": [SCHEMA_SCHEMA], "id": schema_id, "name": name, "description": description,
            "attributes": attributes, "meta": {"resourceType": "Schema", "location": _url("scim-schema", schema_id)}}


def schemas() -> list[dict]:
    return [
        _schema(USER_SCHEMA, "User", "A person provisioned into the org.", USER_ATTRIBUTES),
        _schema(GROUP_SCHEMA, "Group", "A group of provisioned users; its displayName maps to a role.",
                GROUP_ATTRIBUTES),
        _schema(ENTERPRISE_USER_SCHEMA, "EnterpriseUser", "Enterprise attributes, stored and returned as sent.",
                ENTERPRISE_ATTRIBUTES),
    ]


def resource_types() -> list[dict]:
    return [
        {"schemas": [RESOURCE_TYPE_SCHEMA], "id": "User", "name": "User", "endpoint": "/Users",
         "description": "A person provisioned into the org", "schema": USER_SCHEMA,
         "schemaExtensions": [{"schema": ENTERPRISE_USER_SCHEMA, "required": False}],
         "meta": {"resourceType": "ResourceType", "location": _url("scim-resource-type", "User")}},
        {"schemas": [RESOURCE_TYPE_SCHEMA], "id": "Group", "name": "Group", "endpoint": "/Groups",
         "description": "A group of provisioned users", "schema": GROUP_SCHEMA, "schemaExtensions": [],
         "meta": {"resourceType": "ResourceType", "location": _url("scim-resource-type", "Group")}},
    ]


def list_response(resources: list[dict]) -> dict:
    return {"schemas": [LIST_SCHEMA], "totalResults": len(resources), "startIndex": 1,
            "itemsPerPage": len(resources), "Resources": resources}
