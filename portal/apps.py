from django.apps import AppConfig
from django.conf import settings


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Textcat Portal"

    def ready(self) -> None:
        from classifier import embedders

        embedders.set_onnx_cache_dir(settings.PORTAL_ONNX_CACHE_DIR)
        for model_id, source in settings.PORTAL_EMBEDDING_MODELS.items():
            embedders.register(model_id, source)
