from django.urls import path

from studio.accounts import profile, views

urlpatterns = [
    path("team/", views.team_page, name="team"),
    path("team/threshold/", views.set_threshold, name="set_threshold"),
    path("team/two-factor/", views.set_two_factor, name="set_two_factor"),
    path("team/members/<str:username>/cap/", views.set_cap, name="set_cap"),
    path("team/members/<str:username>/role/", views.change_role, name="change_role"),
    path("team/members/<str:username>/remove/", views.remove_member, name="remove_member"),
    path("team/invitations/", views.invite, name="invite"),
    path("team/invitations/<uuid:code>/revoke/", views.revoke_invitation, name="revoke_invitation"),
    path("team/transfer/", views.transfer_ownership, name="transfer_ownership"),
    path("team/leave/", views.leave_team, name="leave_team"),
    path("team/delete/", views.close_team, name="delete_team"),
    path("teams/switch/", views.switch, name="switch_team"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("accounts/profile/", profile.profile, name="profile"),
    path("accounts/profile/keys/<uuid:code>/revoke/", profile.revoke_key, name="profile_revoke_key"),
]
