"""The studio's URLs and, on the bench's web server only, its two yardsticks."""

from django.urls import path

from devtools.bench import views
from studio.urls import urlpatterns as studio_urlpatterns

urlpatterns = [
    path("_bench/trivial/", views.trivial, name="bench_trivial"),
    path("_bench/raw-submit/<int:team_id>/<int:user_id>/", views.raw_submit, name="bench_raw_submit"),
    *studio_urlpatterns,
]
