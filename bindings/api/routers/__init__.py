"""The API's endpoints, one router per resource; `bindings.api` mounts them in this order (the
order of the OpenAPI document's paths)."""
