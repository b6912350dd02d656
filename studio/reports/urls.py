from django.urls import path

from studio.reports import views

urlpatterns = [
    path("", views.overview, name="reports"),
    path("teams/<uuid:code>/", views.team_report, name="report_team"),
    path("teams/<uuid:code>/members/<str:username>/", views.member_report, name="report_member"),
]
