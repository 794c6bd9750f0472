from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from portal import health


@login_not_required
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    result = health.report()
    return JsonResponse(result, status=200 if result["ok"] else 503)
