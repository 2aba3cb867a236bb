"""Request and response models (pydantic v2): validation and the OpenAPI document's schemas."""
