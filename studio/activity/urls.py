from django.urls import path

from studio.activity import views

urlpatterns = [
    path("activity/", views.activity, name="activity"),
    path("audit/", views.audit, name="audit"),
    path("library/<uuid:code>/comments/", views.asset_comments, name="asset_comments"),
    path("comments/<uuid:code>/delete/", views.comment_delete, name="comment_delete"),
]
