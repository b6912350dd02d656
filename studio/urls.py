from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from jobs import views as job_views
from jobs.webhooks import pixazo_webhook
from studio.accounts import throttle
from studio.accounts import views as account_views
from studio.api.native import api
from studio.library import media


def favicon(request):
    """Browsers ask for it on pages that name no icon (the admin's, say). Looked up per
    request: the static manifest exists only once collectstatic has run."""
    return redirect(static("img/favicon.svg"), permanent=True)


# The admin's login is throttled like the studio's.
admin.site.login_form = throttle.ThrottledAdminAuthenticationForm


urlpatterns = [
    # Scripts and the gateway send most requests, and patterns are tried in order: the
    # machine-facing paths come first.
    path("hooks/pixazo/<uuid:code>/<str:token>/", pixazo_webhook, name="pixazo_webhook"),
    path("", include("studio.api.urls")),
    path("api/", api.urls),
    path("", include("studio.ops.urls")),  # healthz, readyz, metrics
    path("", RedirectView.as_view(pattern_name="studio", permanent=False), name="home"),
    path("studio/", job_views.studio, name="studio"),
    path("studio/fibo/", job_views.start_fibo, name="start_fibo"),
    path("studio/rmbg/", job_views.start_rmbg, name="start_rmbg"),
    path("studio/cards/", job_views.card_updates, name="card_updates"),
    path("jobs/<uuid:code>/", job_views.card, name="job_card"),
    path("jobs/<uuid:code>/remove-background/", job_views.remove_background, name="remove_background"),
    path("jobs/<uuid:code>/variations/", job_views.variations, name="variations"),
    path("jobs/<uuid:code>/retry/", job_views.retry, name="retry_job"),
    path("assets/<uuid:code>/", media.asset_file, name="asset_file"),
    path("assets/<uuid:code>/thumbnail/", media.asset_thumbnail, name="asset_thumbnail"),
    path("m/<str:token>/", media.signed_media, name="signed_media"),
    path("", include("studio.accounts.urls")),
    path("wallet/", include("studio.billing.urls")),
    path("library/", include("studio.library.urls")),
    path("", include("studio.gallery.urls")),
    path("", include("studio.activity.urls")),
    path("reports/", include("studio.reports.urls")),
    path("accounts/login/", throttle.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", account_views.signup, name="signup"),
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon, name="favicon"),
]
