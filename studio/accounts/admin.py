from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse

from studio.accounts.models import Invitation, Membership, Team
from studio.admin import ReadOnlyAdmin
from studio.billing import money
from studio.billing.forms import TopUpForm
from studio.billing.models import format_micros


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "balance", "created_at", "archived_at"]
    list_filter = [("archived_at", admin.EmptyFieldListFilter)]
    list_select_related = ["wallet"]
    readonly_fields = ["archived_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]
    actions = ["top_up"]

    @admin.display(description="Balance")
    def balance(self, team):
        return team.wallet.balance_display

    @admin.action(description="Top up the wallet of the selected team")
    def top_up(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one team to top up.", messages.WARNING)
            return None
        return redirect("admin:accounts_team_topup", queryset.get().pk)

    def get_urls(self):
        topup = self.admin_site.admin_view(self.topup_view)
        return [path("<int:team_id>/topup/", topup, name="accounts_team_topup"), *super().get_urls()]

    def topup_view(self, request, team_id):
        if not request.user.is_staff or not self.has_change_permission(request):
            return redirect("admin:index")
        team = get_object_or_404(Team.objects.select_related("wallet"), pk=team_id)
        form = TopUpForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            topup = money.top_up(team, form.micros, actor=request.user, reason=form.cleaned_data["reason"],
                                 key=form.cleaned_data["idempotency_key"])
            if topup:
                self.message_user(request, f"{format_micros(form.micros)} added to {team.name}.", messages.SUCCESS)
            else:
                self.message_user(request, "This top-up was already booked; nothing was added twice.", messages.WARNING)
            return redirect(reverse("admin:accounts_team_change", args=[team.pk]))
        context = {**self.admin_site.each_context(request), "team": team, "form": form,
                   "opts": self.model._meta, "title": f"Top up {team.name}"}
        return render(request, "admin/accounts/team/topup.html", context)


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    """To look at and revoke; invitations are made on the team page, which shows the
    link (its token is stored only as a hash, so the admin could never show it)."""

    staff_may = {"change", "delete"}
    list_display = ["code", "team", "role", "email", "invited_by", "created_at", "expires_at", "accepted_by", "revoked_at"]
    list_select_related = ["team", "invited_by", "accepted_by"]
    search_fields = ["team__slug", "email", "code"]
    readonly_fields = ["code", "team", "role", "email", "token_hash", "invited_by", "created_at", "expires_at",
                       "accepted_at", "accepted_by"]
    actions = ["revoke"]

    @admin.action(description="Revoke the selected invitations")
    def revoke(self, request, queryset):
        for invitation in queryset:
            invitation.revoke()
        self.message_user(request, "Revoked (used and expired ones are left as they were).", messages.SUCCESS)
