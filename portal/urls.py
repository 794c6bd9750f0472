from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal import api
from portal.views import (
    accounts,
    apps,
    concepts,
    datasets,
    evaluations,
    explorer,
    health,
    labeling,
    models,
    predictions,
    quality,
    tokens,
    uploads,
)

app_urls = [
    path("", apps.app_overview, name="app-overview"),
    path("settings/", apps.app_settings, name="app-settings"),
    path("delete/", apps.app_delete, name="app-delete"),
    path("concepts/", include(concepts.urlpatterns)),
    path("datasets/", include(datasets.urlpatterns)),
    path("inputs/", include(explorer.urlpatterns)),
    path("inputs/", include(uploads.urlpatterns)),
    path("label-next/", include(labeling.urlpatterns)),
    path("quality/", include(quality.urlpatterns)),
    path("models/", include(models.urlpatterns)),
    path("models/", include(evaluations.model_urlpatterns)),
    path("evaluations/", include(evaluations.urlpatterns)),
    path("models/<str:model_id>/", include(predictions.urlpatterns)),
]

portal_urls = [
    path("", apps.home, name="home"),
    path("apps/new/", apps.app_create, name="app-create"),
    path("apps/<str:app_id>/", include(app_urls)),
    path("account/api-tokens/", include(tokens.urlpatterns)),
]

urlpatterns = [
    path("", include((portal_urls, "portal"))),
    path("api/v1/", api.urls()),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password_change/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("accounts/password_reset/", accounts.password_reset, name="password_reset"),
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
