from django.urls import path

from studio.billing import views

urlpatterns = [
    path("", views.wallet, name="wallet"),
    path("export.csv", views.wallet_csv, name="wallet_csv"),
]
