from django.urls import path

from studio.library import views

urlpatterns = [
    path("", views.library, name="library"),
    path("variation-price/", views.variation_price, name="variation_price"),
    path("<uuid:code>/", views.asset_detail, name="asset_detail"),
    path("<uuid:code>/star/", views.star, name="asset_star"),
]
