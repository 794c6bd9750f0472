from django.contrib import admin

from portal.models import App, Heartbeat


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = ["slug", "owner", "created"]
    search_fields = ["slug", "owner__username"]


admin.site.register(Heartbeat)
