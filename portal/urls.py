from django.contrib import admin
from django.urls import include, path

from portal.views import accounts, apps, concepts, datasets, explorer, health, uploads

app_urls = [
    path("", apps.app_overview, name="app-overview"),
    path("settings/", apps.app_settings, name="app-settings"),
    path("delete/", apps.app_delete, name="app-delete"),
    path("concepts/", include(concepts.urlpatterns)),
    path("datasets/", include(datasets.urlpatterns)),
    path("inputs/", include(explorer.urlpatterns)),
    path("inputs/", include(uploads.urlpatterns)),
]

portal_urls = [
    path("", apps.home, name="home"),
    path("apps/new/", apps.app_create, name="app-create"),
    path("apps/<str:app_id>/", include(app_urls)),
]

urlpatterns = [
    path("", include((portal_urls, "portal"))),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
