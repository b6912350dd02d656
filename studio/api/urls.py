from django.urls import path

from studio.api import gateway, views

urlpatterns = [
    path("team/api-keys/", views.api_keys, name="api_keys"),
    path("team/api-keys/new/", views.create_key, name="api_key_create"),
    path("team/api-keys/<uuid:code>/revoke/", views.revoke_key, name="api_key_revoke"),
    # The gateway's own paths (see ../shared/seed), for scripts written against it.
    path("bria-fibo-bbq-preview/v1/bria-fibo-bbq-preview-request", gateway.submit_fibo, name="api_gateway_fibo"),
    path("bria-rmbg-2-0-682/v1/bria-rmbg-2-0-request", gateway.submit_rmbg, name="api_gateway_rmbg"),
    path("v2/requests/status/<str:request_id>", gateway.status, name="api_gateway_status"),
]
