from __future__ import annotations

from django.apps import AppConfig


class BindingsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "bindings"
    verbose_name = "Binding Health"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        import bindings.web.sso  # noqa: F401 - registers the single sign-on settings check
        from bindings.api.auth import forget_tokens
        from bindings.models import ApiToken

        # A token revoked or a user deactivated in this process takes effect at once here.
        for model in (ApiToken, get_user_model()):
            for signal in (post_save, post_delete):
                signal.connect(forget_tokens, sender=model, dispatch_uid=f"forget-tokens-{model.__name__}")
