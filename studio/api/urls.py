from django.urls import path

from studio.api import views

urlpatterns = [
    path("team/api-keys/", views.api_keys, name="api_keys"),
    path("team/api-keys/new/", views.create_key, name="api_key_create"),
    path("team/api-keys/<uuid:code>/revoke/", views.revoke_key, name="api_key_revoke"),
]
