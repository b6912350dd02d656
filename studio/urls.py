from allauth.account import views as allauth_views
from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path

from jobs import views as job_views
from jobs.webhooks import pixazo_webhook
from studio.accounts import landing
from studio.accounts import views as account_views
from studio.api.native import api
from studio.library import media


def favicon(request):
    """Browsers ask for it on pages that name no icon (the admin's, say). Looked up per
    request: the static manifest exists only once collectstatic has run."""
    return redirect(static("img/favicon.svg"), permanent=True)


# The admin logs in through the studio's login, rate limits and all.
admin.site.login = secure_admin_login(admin.site.login)


urlpatterns = [
    # Scripts and the gateway send most requests, and patterns are tried in order: the
    # machine-facing paths come first.
    path("hooks/pixazo/<uuid:code>/<str:token>/", pixazo_webhook, name="pixazo_webhook"),
    path("", include("studio.api.urls")),
    path("api/", api.urls),
    path("", include("studio.ops.urls")),  # healthz, readyz, metrics
    path("", landing.home, name="home"),
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
    # allauth's accounts pages; these three keep the names the templates use.
    path("accounts/login/", account_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", allauth_views.logout, name="logout"),
    path("accounts/signup/", account_views.SignupView.as_view(), name="signup"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon, name="favicon"),
]
